/**
 * 补正 and 撤回 in market regulation's protocol, as pure functions (as the Rust adapter's
 * `lifecycle`).
 *
 * A returned licence application reads `status` `RETURNED` with `supplement` (`reason`,
 * `fields`: `[{"field", "reason"}]` in the department's names, `materials`: `[{"code",
 * "reason"}]`, `dueDate`). The supplement is `POST /api/licences/{no}/supplements` (`requestId`,
 * `fields` the corrected ones by the department's names, `materials` as an application names
 * them); the withdrawal `POST …/withdrawal` (`requestId`, `reason`), answered with the
 * application document after it.
 */

import { AdapterFailure, FieldMap, Problems } from '../../sdk-js/gov-adapter/index.js';

/** The fields of a licence application the department takes in a supplement. */
export const LICENCE_FIELDS = new FieldMap([
  ['address', 'address'],
  ['business_scope', 'businessScope'],
  ['registered_capital', 'registeredCapital'],
]);

// Paths are built on the application's own, percent-encoded (protocol.js).
export const supplementsPath = (licencePath) => `${licencePath}/supplements`;
export const withdrawalPath = (applicationPath) => `${applicationPath}/withdrawal`;

/** The supplement's body without its materials: `{value}`, or `{problems}` with every problem. */
export function supplementBody(requestId, payload) {
  const corrections = LICENCE_FIELDS.corrections(payload);
  if (corrections.problems) return corrections;
  const p = new Problems();
  const fields = {};
  for (const { name, path, text } of corrections.fields) {
    if (name === 'registeredCapital') {
      const v = Number(text);
      if (text.trim() === '' || !Number.isFinite(v) || v <= 0) {
        p.add(path, 'range', '注册资本须大于0万元');
        continue;
      }
      fields[name] = v;
    } else {
      fields[name] = text;
    }
  }
  return p.length > 0 ? { problems: p.list() } : { value: { requestId, fields } };
}

/** The withdrawal's body. */
export function withdrawalBody(requestId, reason) {
  return { requestId, reason: reason.trim() || '申请人主动撤回' };
}

/** What a returned application's `supplement` asks, in the unified names. */
export function requested(data) {
  const supplement = data.supplement;
  if (!supplement || typeof supplement !== 'object' || Array.isArray(supplement)) {
    throw AdapterFailure.protocol('RETURNED without `supplement`');
  }
  const text = (entry, field) => {
    const value = entry?.[field];
    if (typeof value !== 'string' || value === '') {
      throw AdapterFailure.protocol(`\`supplement\` entry without \`${field}\``);
    }
    return value;
  };
  const list = (name) => (Array.isArray(supplement[name]) ? supplement[name] : []);
  const fields = list('fields').map((entry) => ({
    field: LICENCE_FIELDS.unified(text(entry, 'field')),
    code: 'rule',
    message: text(entry, 'reason'),
  }));
  const materials = list('materials').map((entry) => ({
    code: text(entry, 'code'),
    reason: text(entry, 'reason'),
  }));
  if (fields.length === 0 && materials.length === 0) {
    throw AdapterFailure.protocol('`supplement` asks for nothing');
  }
  const due = typeof supplement.dueDate === 'string' && supplement.dueDate !== '' ? supplement.dueDate : undefined;
  return { fields, materials, due };
}
