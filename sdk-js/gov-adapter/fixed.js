/**
 * Fixed-length records (定长报文) in GB18030 or GBK: the JavaScript twin of the Python helper
 * (`sdk-python/gov_adapter/fixed.py`), same rules and messages.
 *
 * Many department systems exchange records of fields at fixed byte offsets: text right-padded
 * with spaces, numbers left-padded with zeros, widths counted in the *encoded* bytes (in GB18030
 * a Chinese character is 2 bytes, a rare one 4). A `Layout` names the fields in order; `pack`
 * writes a record and reports every field that does not fit, at once; `unpack` reads one and
 * refuses anything that is not exactly the layout (a department's answer that does not parse is
 * a protocol fault, not a value to guess at).
 *
 * ```js
 * const record = new Layout([
 *   { name: 'name', width: 60, title: '单位名称', path: 'enterprise_name' },
 *   { name: 'employees', width: 6, kind: 'number', title: '职工人数' },
 * ]);
 * const problems = new Problems();
 * const bytes = record.pack({ name: form.enterprise_name, employees: form.employees }, problems);
 * problems.throwIfAny();
 * ```
 */

import { decodeGb18030, encodeGb18030, encodeGbk } from './text.js';
import { Problems } from './problems.js';

/** The encoding of most Chinese fixed-length protocols; GBK is its 2-byte subset. */
export const GB18030 = 'gb18030';
export const GBK = 'gbk';

/** A record that is not its layout: wrong length, a number with a non-digit, bad text. */
export class FixedFormatError extends Error {}

const SPACE = 0x20;
const ZERO = 0x30;

function encoderOf(encoding) {
  if (encoding === GB18030) return encodeGb18030;
  if (encoding === GBK) return encodeGbk;
  throw new RangeError(`unknown encoding ${encoding}: gb18030 or gbk`);
}

/**
 * Fields in order, packed back to back. Each field is `{name, width, kind, title, path}`:
 * `kind` is `'text'` (right-padded with spaces, trailing spaces dropped when read; the default)
 * or `'number'` (digits, left-padded with zeros, read as a number); `title` names the field in
 * problems (the applicant's words); `path` is the unified input's field those problems are about
 * (defaults to `name`).
 */
export class Layout {
  constructor(fields, encoding = GB18030) {
    this.encode = encoderOf(encoding);
    this.encoding = encoding;
    this.fields = fields.map((f) => {
      const field = { kind: 'text', title: '', path: undefined, ...f };
      if (field.kind !== 'text' && field.kind !== 'number') {
        throw new RangeError(`field ${field.name}: kind must be text or number`);
      }
      if (!Number.isInteger(field.width) || field.width <= 0) {
        throw new RangeError(`field ${field.name}: width must be a positive integer`);
      }
      return Object.freeze(field);
    });
    if (new Set(this.fields.map((f) => f.name)).size !== this.fields.length) {
      throw new RangeError('field names must be distinct');
    }
  }

  /** The record's width in bytes. */
  get width() {
    return this.fields.reduce((n, f) => n + f.width, 0);
  }

  /**
   * The record of `values` (an object, one value per field). Every value that does not fit is
   * added to `problems` (the field's `path`, code `range` or `format`, a Chinese message);
   * without `problems` the first one throws `FixedFormatError`. A field with a problem is
   * written blank so the other fields can still be checked.
   */
  pack(values, problems) {
    const found = problems ?? new Problems();
    const out = new Uint8Array(this.width);
    let at = 0;
    for (const f of this.fields) {
      out.set(this.#field(f, values[f.name], found), at);
      at += f.width;
    }
    if (problems === undefined && found.list().length > 0) {
      throw new FixedFormatError(found.list()[0].message);
    }
    return out;
  }

  #field(f, value, problems) {
    const title = f.title || f.name;
    const path = f.path ?? f.name;
    const upper = this.encoding.toUpperCase();
    if (f.kind === 'number') {
      const text = value === undefined || value === null || value === '' ? '0' : String(value);
      if (!/^[0-9]+$/.test(text)) {
        problems.add(path, 'format', `「${title}」应为非负整数`);
        return new Uint8Array(f.width).fill(ZERO);
      }
      if (text.length > f.width) {
        problems.add(path, 'range', `「${title}」最多${f.width}位数字`);
        return new Uint8Array(f.width).fill(ZERO);
      }
      return new TextEncoder().encode(text.padStart(f.width, '0'));
    }
    const text = value === undefined || value === null ? '' : String(value);
    let data;
    try {
      data = this.encode(text);
    } catch {
      problems.add(path, 'format', `「${title}」含有无法以${upper}编码的字符`);
      return new Uint8Array(f.width).fill(SPACE);
    }
    if (data.length > f.width) {
      problems.add(
        path,
        'range',
        `「${title}」超出${f.width}字节（${upper}编码后${data.length}字节，汉字计2字节）`,
      );
      return new Uint8Array(f.width).fill(SPACE);
    }
    const field = new Uint8Array(f.width).fill(SPACE);
    field.set(data);
    return field;
  }

  /** The values of one record that is exactly this layout (a `Uint8Array`). */
  unpack(data) {
    if (data.length !== this.width) {
      throw new FixedFormatError(`record of ${data.length} bytes, the layout has ${this.width}`);
    }
    const values = {};
    let at = 0;
    for (const f of this.fields) {
      const raw = data.subarray(at, at + f.width);
      at += f.width;
      if (f.kind === 'number') {
        if (!raw.every((b) => b >= ZERO && b <= ZERO + 9)) {
          throw new FixedFormatError(`field ${f.name}: not digits`);
        }
        values[f.name] = Number(new TextDecoder().decode(raw));
        continue;
      }
      let text;
      try {
        text = decodeGb18030(raw);
      } catch {
        throw new FixedFormatError(`field ${f.name}: not ${this.encoding}`);
      }
      // GBK has no four-byte sequences: a record said to be GBK that holds one is not GBK.
      if (this.encoding === GBK) {
        try {
          encodeGbk(text);
        } catch {
          throw new FixedFormatError(`field ${f.name}: not gbk`);
        }
      }
      values[f.name] = text.replace(/ +$/, '');
    }
    return values;
  }
}
