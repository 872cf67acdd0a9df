/**
 * Field problems gathered at once, then thrown as one `invalid-input`.
 *
 * An applicant fixes every field in one go when told every problem together (一次性告知): check
 * all fields, `add` each problem, then `throwIfAny()` (or return `list()` from `validate`).
 */

import { AdapterFailure } from './host.js';
import { creditCodeProblem, residentIdProblem } from './ids.js';

/** A trimmed, non-blank string, or undefined. */
export function present(value) {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? undefined : trimmed;
}

export class Problems {
  constructor() {
    /** @type {{field: string, code: string, message: string}[]} */
    this.items = [];
  }

  /** Record one problem. */
  add(field, code, message) {
    this.items.push({ field, code, message });
    return this;
  }

  /** Add every problem of another list (or `Problems`). */
  extend(problems) {
    this.items.push(...(problems instanceof Problems ? problems.items : problems));
    return this;
  }

  /** A present, non-blank value, or a `required` problem (必填项). */
  required(field, value) {
    if (present(typeof value === 'number' ? String(value) : value) === undefined) {
      this.add(field, 'required', '必填项');
    }
    return this;
  }

  /** A resident identity number (GB 11643), if present. */
  residentId(field, value) {
    const wrong = present(value) && residentIdProblem(present(value));
    if (wrong) this.add(field, wrong.code, wrong.message);
    return this;
  }

  /** A unified social credit code (GB 32100), if present. */
  creditCode(field, value) {
    const wrong = present(value) && creditCodeProblem(present(value));
    if (wrong) this.add(field, wrong.code, wrong.message);
    return this;
  }

  get length() {
    return this.items.length;
  }

  /** The problems, as `field-error` records (what `validate` returns). */
  list() {
    return this.items.map((p) => ({ ...p }));
  }

  /** Throw every problem at once as the contract's `invalid-input`. */
  throwIfAny() {
    if (this.items.length > 0) throw AdapterFailure.invalidInput(this.items);
  }
}

/** Where a value does not have its shape's type, or undefined. */
function mismatch(value, shape, path) {
  if (value === undefined || value === null) return undefined;
  if (shape === 'string' || shape === 'number' || shape === 'boolean') {
    return typeof value === shape ? undefined : `${path || '.'}: expected a ${shape}`;
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return `${path}: expected an array`;
    for (let i = 0; i < value.length; i++) {
      const wrong = value[i] === null ? `${path}.${i}: null` : mismatch(value[i], shape[0], `${path}.${i}`);
      if (wrong) return wrong;
    }
    return undefined;
  }
  if (typeof value !== 'object' || Array.isArray(value)) return `${path || '.'}: expected an object`;
  for (const [key, inner] of Object.entries(shape)) {
    const wrong = mismatch(value[key], inner, path ? `${path}.${key}` : key);
    if (wrong) return wrong;
  }
  return undefined;
}

/**
 * Parse a payload and check its fields' types against `shape` (`{field: 'string' | 'number' |
 * [itemShape] | {…}}`; absent and null fields pass). The host has already checked it against the
 * matter's schema, so a failure means the adapter and its schema disagree: one `format` problem
 * of the whole, as the Rust sdk's `payload::parse`. Answers `{value}` or `{problems}`.
 */
export function parsePayload(payload, shape) {
  let value;
  try {
    value = JSON.parse(payload);
  } catch (e) {
    value = e;
  }
  const wrong =
    value instanceof Error ? value.message : value === null ? 'null' : mismatch(value, shape, '');
  if (wrong) {
    return {
      problems: [{ field: '', code: 'format', message: `payload does not match the matter's input: ${wrong}` }],
    };
  }
  return { value };
}
