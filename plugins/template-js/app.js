/**
 * A department adapter in JavaScript: the template (copy this folder, then rename).
 *
 * It serves one matter, `example.registration`, for a department that takes JSON over HTTP POST
 * and signs nothing: replace the protocol in `submit` and `status` with your department's, the
 * schema with your matter's, and DEPARTMENT with the department id the gateway's config uses.
 *
 * Rules of a component (see docs/writing-an-adapter-in-javascript.md):
 * - the module is `app.js`; its exports are the contract's, in camelCase (`onCallback`);
 * - import the helper library by a relative path (`../../sdk-js/gov-adapter/index.js`) and your
 *   own modules relatively: no npm packages at run time (nothing is bundled);
 * - everything synchronous: an export returns its answer, it does not await;
 * - fail an export by throwing the contract's errors (`AdapterFailure`), never a bare `Error`
 *   (that traps, and the host answers a generic failure);
 * - `u64` values (a file's size) arrive as BigInt; `option` values are `undefined` when absent.
 */

import {
  AdapterFailure, CONTRACT_VERSION, Problems, Request, parsePayload, unsupported,
} from '../../sdk-js/gov-adapter/index.js';

export const DEPARTMENT = 'example';
export const MATTER = 'example.registration';

const SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['credit_code', 'enterprise_name'],
  properties: {
    credit_code: { type: 'string', title: '统一社会信用代码' },
    enterprise_name: { type: 'string', title: '单位名称' },
  },
};

/** The payload, or every problem with it. */
function read(payload) {
  const parsed = parsePayload(payload, { credit_code: 'string', enterprise_name: 'string' });
  if (parsed.problems) return parsed;
  const p = new Problems()
    .required('credit_code', parsed.value.credit_code)
    .creditCode('credit_code', parsed.value.credit_code)
    .required('enterprise_name', parsed.value.enterprise_name);
  return p.length > 0 ? { problems: p.list() } : parsed;
}

export function describe() {
  return {
    department: DEPARTMENT,
    contractVersion: CONTRACT_VERSION,
    adapterVersion: '0.1.0',
    matters: [{ code: MATTER, name: '示例登记', inputSchema: JSON.stringify(SCHEMA) }],
    lookups: [],
  };
}

export function validate(matter, payload) {
  return read(payload).problems ?? [];
}

export function submit(submission) {
  const data = read(submission.payload);
  if (data.problems) throw AdapterFailure.invalidInput(data.problems);
  const answer = Request.post('/api/registrations')
    .json({ requestId: submission.idempotencyKey, creditCode: data.value.credit_code })
    .send();
  if (answer.status !== 200) throw AdapterFailure.unavailable(`department answered HTTP ${answer.status}`);
  const number = answer.json()?.number;
  if (typeof number !== 'string') throw AdapterFailure.protocol('department answer unreadable');
  return { reference: number, state: 'accepted', message: undefined, outputs: '{}', requested: undefined };
}

export function status(matter, reference) {
  const answer = Request.get(`/api/registrations/${encodeURIComponent(reference)}`).send();
  const done = answer.json()?.done;
  if (typeof done !== 'boolean') throw AdapterFailure.protocol('department answer unreadable');
  return { reference, state: done ? 'approved' : 'processing', message: undefined, outputs: '{}', requested: undefined };
}

export function lookup() {
  throw unsupported('lookup');
}

export function onCallback() {
  throw unsupported('on-callback');
}

export function supplement() {
  throw unsupported('supplement');
}

export function withdraw() {
  throw unsupported('withdraw');
}
