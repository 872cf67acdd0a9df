/**
 * gov-adapter: a thin helper library for department adapters written in JavaScript.
 *
 * What the Rust `sdk` crate gives Rust authors, for a component built with componentize-js from
 * the gateway's contract (`wit/v0.3.0`):
 *
 * - typed calls to the host's imports, their errors already the contract's `adapter-error`
 *   (`host.js`: department HTTP, materials, config, cache, log, crypto with keys the host holds);
 * - field problems gathered at once (`problems.js`);
 * - identifier checks with Chinese messages (`ids.js`: GB 11643, GB 32100);
 * - text: GBK / GB18030 encode and decode, hex, percent-encoding (`text.js`);
 * - fixed-length records (定长报文) with widths in encoded bytes (`fixed.js`);
 * - supplements' fields in a department's names and back (`lifecycle.js`);
 * - a harness that runs scripted department exchanges without a gateway (`../testing`).
 *
 * Adapters import this file by a relative path (`../../sdk-js/gov-adapter/index.js`):
 * componentize-js follows relative imports from the repository root, so no bundler is needed.
 */

export * from './host.js';
export * from './problems.js';
export * from './ids.js';
export * from './text.js';
export * from './fixed.js';
export * from './lifecycle.js';

/** The contract version these helpers are written for. */
export const CONTRACT_VERSION = '0.3.0';
