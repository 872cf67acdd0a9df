/**
 * Supplements (补正): the applicant's corrected fields in a department's names, and a
 * department's return back in the unified ones — as the Rust sdk's `lifecycle::FieldMap`.
 *
 * A supplement's payload is a JSON object of only the fields the applicant changed, in the
 * matter's unified shape. A `FieldMap` lists the pairs (unified dotted path, department name).
 */

/** The fields a department takes in a supplement: `[[unifiedPath, departmentName], …]`. */
export class FieldMap {
  constructor(pairs) {
    this.pairs = pairs;
  }

  /** The department's name of a unified field, if it takes it in a supplement. */
  department(unified) {
    return this.pairs.find(([u]) => u === unified)?.[1];
  }

  /** The unified path of a department's field; an unknown name is kept as the department wrote it. */
  unified(department) {
    return this.pairs.find(([, d]) => d === department)?.[0] ?? department;
  }

  /**
   * The corrected fields of a supplement's payload as `{name, path, text}`, by path; or
   * `{problems}` with every problem at once: a payload that is not an object, a field the
   * department does not take (`rule`), a value that is not a non-blank text or a number (`format`).
   */
  corrections(payload) {
    const leaves = flatten(payload);
    if (leaves.problems) return leaves;
    const found = [];
    const problems = [];
    for (const [path, value] of leaves.fields) {
      const name = this.department(path);
      if (name === undefined) {
        problems.push({ field: path, code: 'rule', message: '该部门补正时不接受更改此项' });
      } else if (typeof value === 'string' && value.trim() !== '') {
        found.push({ name, path, text: value.trim() });
      } else if (typeof value === 'number') {
        found.push({ name, path, text: String(value) });
      } else {
        problems.push({ field: path, code: 'format', message: '补正的值须为非空文本' });
      }
    }
    return problems.length > 0 ? { problems } : { fields: found };
  }
}

/** The leaves of a JSON object with their dotted paths, sorted by path; arrays are leaves. */
export function flatten(payload) {
  let value;
  try {
    value = JSON.parse(payload);
  } catch (e) {
    return { problems: [{ field: '', code: 'format', message: `补正内容不是JSON对象：${e.message}` }] };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { problems: [{ field: '', code: 'format', message: '补正内容须为JSON对象' }] };
  }
  const leaves = [];
  const walk = (prefix, object) => {
    for (const [k, v] of Object.entries(object)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) walk(path, v);
      else leaves.push([path, v]);
    }
  };
  walk('', value);
  leaves.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { fields: leaves };
}
