/**
 * Bytes and text: UTF-8, hex, percent-encoding, and GBK / GB18030 — the encodings of many
 * department systems' fixed-length messages (定长报文) and XML.
 *
 * The contract has no encoding import, and GBK cannot be encoded without its mapping, so the
 * mapping comes from where a component already has one: the engine's `TextDecoder` (StarlingMonkey
 * decodes GB18030 with encoding_rs, Node with ICU; both follow the WHATWG Encoding Standard).
 * Encoding inverts it: decode every two-byte sequence and every four-byte sequence of the Basic
 * Multilingual Plane once and keep the inverse (two 128 KiB tables); code points beyond it are
 * arithmetic. No table ships in the component and no npm package is bundled.
 *
 * Building the tables takes about half a second of the component's interpreter, and every call
 * is a fresh instance: an adapter that encodes GBK calls `prepareGbk()` at the top of its
 * `app.js`, which runs once when the component is built, so every instance starts from the
 * snapshot with the tables made (without it, each call that encodes builds them again).
 */

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return new TextEncoder().encode(text);
}

/** Lowercase hex of bytes. */
export function hex(bytes) {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Bytes of a hex string (either case); undefined when it is not hex. */
export function unhex(text) {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Percent-encode everything but RFC 3986 unreserved characters (UTF-8 first). */
export function percentEncode(value) {
  let out = '';
  for (const b of utf8(value)) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Text of GB18030 (or GBK: the same decoder, as the Encoding Standard says) bytes. */
export function decodeGb18030(bytes, { fatal = true } = {}) {
  return new TextDecoder('gb18030', { fatal }).decode(bytes);
}

export const decodeGbk = decodeGb18030;

/** The first four-byte sequence's linear index beyond the BMP (0x90308130). */
const SUPPLEMENTARY_LINEAR = 189000;
/** Four-byte sequences of the BMP: linear indexes 0 (0x81308130) to 39419 (0x8431A439). */
const BMP_FOUR_BYTE = 39420;

let tables;

/**
 * Make the encoding tables now: call it at the top level of `app.js` (see the module's doc), so
 * the component's snapshot holds them.
 */
export function prepareGbk() {
  inverse();
}

/** Per BMP code point: its two-byte code, or its four-byte linear index + 1 (0: none). */
function inverse() {
  if (tables) return tables;
  const two = new Uint16Array(0x10000);
  const four = new Uint16Array(0x10000);
  const decoder = new TextDecoder('gb18030');
  const row = new Uint8Array(190 * 2);
  for (let lead = 0x81; lead <= 0xfe; lead++) {
    let n = 0;
    for (let trail = 0x40; trail <= 0xfe; trail++) {
      if (trail === 0x7f) continue;
      row[n++] = lead;
      row[n++] = trail;
    }
    const text = decoder.decode(row);
    // Every two-byte position of GB18030 is mapped (user-defined areas to the PUA): one
    // UTF-16 unit each. Should an engine differ, decode the row's pairs one by one.
    for (let i = 0; i < 190; i++) {
      const unit =
        text.length === 190 ? text.charCodeAt(i) : decoder.decode(row.subarray(2 * i, 2 * i + 2)).charCodeAt(0);
      if (unit !== 0xfffd && two[unit] === 0) two[unit] = (row[2 * i] << 8) | row[2 * i + 1];
    }
  }
  const seqs = new Uint8Array(BMP_FOUR_BYTE * 4);
  for (let linear = 0; linear < BMP_FOUR_BYTE; linear++) seqs.set(fourBytes(linear), linear * 4);
  const text = decoder.decode(seqs);
  for (let linear = 0; linear < BMP_FOUR_BYTE && text.length === BMP_FOUR_BYTE; linear++) {
    const unit = text.charCodeAt(linear);
    if (unit !== 0xfffd && two[unit] === 0 && four[unit] === 0) four[unit] = linear + 1;
  }
  tables = { two, four };
  return tables;
}

function fourBytes(linear) {
  const b4 = linear % 10;
  const b3 = Math.floor(linear / 10) % 126;
  const b2 = Math.floor(linear / 1260) % 10;
  const b1 = Math.floor(linear / 12600);
  return [0x81 + b1, 0x30 + b2, 0x81 + b3, 0x30 + b4];
}

function encode(text, fourByte) {
  const { two, four } = inverse();
  const out = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp < 0x80) {
      out.push(cp);
    } else if (cp < 0x10000 && two[cp] !== 0) {
      out.push(two[cp] >> 8, two[cp] & 0xff);
    } else if (fourByte && cp < 0x10000 && four[cp] !== 0) {
      out.push(...fourBytes(four[cp] - 1));
    } else if (fourByte && cp >= 0x10000) {
      out.push(...fourBytes(SUPPLEMENTARY_LINEAR + cp - 0x10000));
    } else {
      throw new RangeError(`「${ch}」(U+${cp.toString(16).toUpperCase()}) 无法以GBK编码`);
    }
  }
  return new Uint8Array(out);
}

/** GB18030 bytes of any text. */
export function encodeGb18030(text) {
  return encode(text, true);
}

/** GBK bytes of text; a character GBK lacks (a rare name character, an emoji) is a RangeError. */
export function encodeGbk(text) {
  return encode(text, false);
}
