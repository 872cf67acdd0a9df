/**
 * The adapter a test drives: its source (`app.js` beside the test's folder), or — when
 * `GOV_ADAPTER_COMPONENT` names one — its built component, transpiled by jco into a module whose
 * imports are the same fakes (`cargo xtask js-tests` runs each adapter's tests both ways). The
 * component run checks that what was scripted against the source holds for the snapshotted
 * SpiderMonkey inside the `.wasm` the gateway loads: the bindings' conversions (BigInt sizes,
 * `{tag, val}` variants, errors thrown as `payload`), and nothing in the source that only Node
 * has.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

/** The module to call: `await loadAdapter(import.meta.url)` from a file in `tests/`. */
export async function loadAdapter(testUrl) {
  const component = process.env.GOV_ADAPTER_COMPONENT;
  if (component) return import(pathToFileURL(resolve(component)).href);
  return import(new URL('../app.js', testUrl).href);
}
