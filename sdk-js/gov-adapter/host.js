/**
 * The host's imports, typed, and the contract's errors as exceptions.
 *
 * An export returning `result<_, adapter-error>` fails by throwing: componentize-js turns a
 * thrown value's `payload` (`{tag, val}`, the variant) into the error. `AdapterFailure` builds
 * those, and every call here already turns the host's own errors into them (a department that
 * cannot be reached is `unavailable`, a missing setting `internal`), so an adapter's code reads
 * as its protocol. Any other exception traps: the host answers a generic failure.
 *
 * The imports are namespace imports of the contract's interfaces. Inside a component they are
 * the host's; under `node --test` the harness's loader (`../testing/register.js`) resolves the
 * same specifiers to its fakes, so the same code runs in both.
 */

import * as http from 'gov:adapter/department-http@0.3.0';
import * as materialsImport from 'gov:adapter/materials@0.3.0';
import * as config from 'gov:adapter/config@0.3.0';
import * as cacheImport from 'gov:adapter/cache@0.3.0';
import * as logImport from 'gov:adapter/log@0.3.0';
import * as crypto from 'gov:adapter/crypto@0.3.0';
import { hex, utf8 } from './text.js';

// ---- the contract's errors --------------------------------------------------------------

/** An export's failure: `payload` is the contract's `adapter-error`. */
export class AdapterFailure extends Error {
  constructor(tag, val) {
    super(`${tag}: ${typeof val === 'string' ? val : JSON.stringify(val)}`);
    this.name = 'AdapterFailure';
    this.payload = { tag, val };
  }

  /** The kind (`invalid-input`, `rejected`, `unavailable`, `timeout`, `protocol`, `internal`). */
  get tag() {
    return this.payload.tag;
  }

  /** Every field problem at once (`[{field, code, message}]`). */
  static invalidInput(problems) {
    const list = problems.items ?? problems;
    return new AdapterFailure(
      'invalid-input',
      list.map(({ field, code, message }) => ({ field, code, message })),
    );
  }

  /** The department refused on the merits: recorded on the case. */
  static rejected(code, message) {
    return new AdapterFailure('rejected', { code, message });
  }

  /** The department cannot be reached or refuses service: worth retrying. */
  static unavailable(message) {
    return new AdapterFailure('unavailable', message);
  }

  static timeout(message) {
    return new AdapterFailure('timeout', message);
  }

  /** The department answered something the adapter cannot read. */
  static protocol(message) {
    return new AdapterFailure('protocol', message);
  }

  /** A bug, or a configuration only an operator can fix. */
  static internal(message) {
    return new AdapterFailure('internal', message);
  }
}

/** The error of an export this adapter does not implement (its department has none). */
export function unsupported(call) {
  return AdapterFailure.internal(
    `this adapter does not implement \`${call}\` (its department's protocol has none)`,
  );
}

/** The variant a failed import call threw (`{tag, val}`). */
function importError(e) {
  if (e && typeof e === 'object' && e.payload && typeof e.payload.tag === 'string') {
    return e.payload;
  }
  throw e;
}

// ---- department HTTP --------------------------------------------------------------------

/** Body parts: bytes the adapter writes, and slices of materials the host streams in. */
export const part = {
  /** Bytes (a string is sent as UTF-8). */
  bytes(value) {
    return { tag: 'bytes', val: typeof value === 'string' ? utf8(value) : value };
  },
  /**
   * A stretch of material `code` of the call in progress, written by the host as it is (`raw`)
   * or in Base64 (`base64`); the bytes never enter the adapter.
   */
  material(code, { offset = 0, length, encoding = 'raw' } = {}) {
    return {
      tag: 'material',
      val: {
        code,
        offset: BigInt(offset),
        length: length === undefined ? undefined : BigInt(length),
        encoding,
      },
    };
  },
};

/** A department's answer; header names are lowercase (as the host gives them). */
export class Response {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }

  header(name) {
    const lower = name.toLowerCase();
    const found = this.headers.find(([k]) => k.toLowerCase() === lower);
    return found ? found[1] : undefined;
  }

  /** The body as UTF-8 text. */
  text() {
    return new TextDecoder().decode(this.body);
  }

  /** The body as JSON, or undefined when it is not JSON. */
  json() {
    try {
      return JSON.parse(this.text());
    } catch {
      return undefined;
    }
  }
}

/** One request to the adapter's own department, built then `send()`. */
export class Request {
  constructor(method, path) {
    this.method = method;
    this.path = path;
    this.headers = [];
    this.body = [];
  }

  static get(path) {
    return new Request('GET', path);
  }

  static post(path) {
    return new Request('POST', path);
  }

  static put(path) {
    return new Request('PUT', path);
  }

  header(name, value) {
    this.headers.push([name, String(value)]);
    return this;
  }

  /** A JSON body (and its content type). */
  json(value) {
    this.header('Content-Type', 'application/json');
    this.body = [part.bytes(JSON.stringify(value))];
    return this;
  }

  /** A body of bytes or text (UTF-8). */
  bytes(value) {
    this.body = [part.bytes(value)];
    return this;
  }

  /** A body in parts (`part.bytes`, `part.material`). */
  parts(parts) {
    this.body = parts;
    return this;
  }

  /**
   * Send it: the answer, whatever its status. The host's refusals become `internal` (the
   * adapter asked for something it may not), an unreachable department `unavailable`, no answer
   * in time `timeout`, an oversized answer `protocol`.
   */
  send() {
    let answer;
    try {
      answer = http.send({
        method: this.method,
        path: this.path,
        headers: this.headers,
        body: this.body,
      });
    } catch (e) {
      const err = importError(e);
      switch (err.tag) {
        case 'forbidden':
          throw AdapterFailure.internal(`the host refused the request: ${err.val}`);
        case 'unavailable':
          throw AdapterFailure.unavailable(`department unreachable: ${err.val}`);
        case 'timeout':
          throw AdapterFailure.timeout('department did not answer in time');
        default:
          throw AdapterFailure.protocol('department answer too large');
      }
    }
    return new Response(answer.status, answer.headers, new Uint8Array(answer.body));
  }
}

// ---- materials --------------------------------------------------------------------------

/** The most one `readMaterial` returns (1 MiB, the host's limit). */
export const READ_MAX = 1 << 20;

/** Up to `max` bytes of material `code` from `offset`; empty past its end. */
export function readMaterial(code, offset, max = READ_MAX) {
  try {
    return new Uint8Array(materialsImport.read(code, BigInt(offset), Math.min(max, READ_MAX)));
  } catch (e) {
    const err = importError(e);
    if (err.tag === 'unknown') throw AdapterFailure.internal(`no material ${err.val} in this call`);
    throw AdapterFailure.unavailable(`material could not be read: ${err.val}`);
  }
}

/** The chunks `{index, offset, length}` of a file of `size` bytes cut by `chunkSize`. */
export function chunks(size, chunkSize) {
  const total = Number(size);
  const out = [];
  for (let index = 0, offset = 0; offset < total || index === 0; index++, offset += chunkSize) {
    out.push({ index, offset, length: Math.min(chunkSize, total - offset) });
  }
  return out;
}

/**
 * The SM3 of one chunk of material `code`, lowercase hex, by the host. The chunk is read whole
 * (a slice at a time): a chunk is at most what the department cuts by, 1 MiB as this library's
 * adapters ask.
 */
export function chunkSm3Hex(code, chunk) {
  const whole = new Uint8Array(chunk.length);
  let got = 0;
  while (got < chunk.length) {
    const slice = readMaterial(code, chunk.offset + got, chunk.length - got);
    if (slice.length === 0) {
      throw AdapterFailure.internal(`material ${code} ended before byte ${chunk.offset + got}`);
    }
    whole.set(slice, got);
    got += slice.length;
  }
  return hex(sm3(whole));
}

// ---- config, cache, log -----------------------------------------------------------------

/** A setting of this department (`[departments.<id>.settings]`), if set. */
export function setting(key) {
  return config.get(key) ?? undefined;
}

/** A setting that must be set; its absence is the operator's mistake (`internal`). */
export function requireSetting(key) {
  const value = setting(key);
  if (value === undefined || value === '') {
    throw AdapterFailure.internal(`setting \`${key}\` is not configured`);
  }
  return value;
}

/** The adapter's small cache, shared by its instances, with expiry (tokens, never personal data). */
export const cache = {
  get(key) {
    const value = cacheImport.get(key);
    return value === undefined || value === null ? undefined : new Uint8Array(value);
  },
  getString(key) {
    const value = cache.get(key);
    return value === undefined ? undefined : new TextDecoder().decode(value);
  },
  set(key, value, ttlMs) {
    cacheImport.set(key, typeof value === 'string' ? utf8(value) : value, ttlMs);
  },
  delete(key) {
    cacheImport['delete'](key);
  },
};

/** Log lines into the gateway's traces; the host masks personal identifiers. */
export const log = {
  trace: (message) => logImport.log('trace', message),
  debug: (message) => logImport.log('debug', message),
  info: (message) => logImport.log('info', message),
  warn: (message) => logImport.log('warn', message),
  error: (message) => logImport.log('error', message),
};

// ---- crypto with keys the host holds ----------------------------------------------------

function cryptoFailure(err) {
  if (err.tag === 'unknown-key') {
    return AdapterFailure.internal(`key not configured for this department: ${err.val}`);
  }
  return AdapterFailure.internal(`crypto input refused: ${err.val}`);
}

function withKey(call) {
  try {
    return call();
  } catch (e) {
    throw cryptoFailure(importError(e));
  }
}

/** The SM3 digest of `data` (bytes or UTF-8 text). */
export function sm3(data) {
  return new Uint8Array(crypto.sm3(typeof data === 'string' ? utf8(data) : data));
}

/** A signature by the host's private key `key` (`sm2-sm3`, DER; or `ed25519`). */
export function sign(key, data, algorithm = 'sm2-sm3') {
  return new Uint8Array(withKey(() => crypto.sign(key, algorithm, data)));
}

/** Whether `signature` over `data` is valid under key `key`; a malformed signature is false. */
export function verify(key, data, signature, algorithm = 'sm2-sm3') {
  try {
    return Boolean(crypto.verify(key, algorithm, data, signature));
  } catch (e) {
    const err = importError(e);
    if (err.tag === 'invalid') return false;
    throw cryptoFailure(err);
  }
}

/** A MAC of `data` with the host's secret `key` (`hmac-sha256` or `hmac-sm3`). */
export function mac(key, data, algorithm = 'hmac-sha256') {
  return new Uint8Array(withKey(() => crypto.mac(key, algorithm, typeof data === 'string' ? utf8(data) : data)));
}

/**
 * Whether `signatureHex` is the MAC of `data` under the host's secret `key`: how an adapter
 * checks a department's signed callback without holding the secret. The host computes the MAC;
 * the comparison looks at every byte whatever differs, so its time tells a forger nothing. Hex
 * digits in either case; anything else, or the wrong length, is false.
 */
export function verifyMacHex(key, data, signatureHex, algorithm = 'hmac-sha256') {
  const expected = mac(key, data, algorithm);
  const text = String(signatureHex);
  if (text.length !== expected.length * 2 || !/^[0-9a-fA-F]*$/.test(text)) return false;
  let differ = 0;
  for (let i = 0; i < expected.length; i++) {
    differ |= expected[i] ^ parseInt(text.slice(i * 2, i * 2 + 2), 16);
  }
  return differ === 0;
}

/** SM4-CBC with PKCS#7 under the host's key `key`. */
export function sm4Encrypt(key, iv, data) {
  return new Uint8Array(withKey(() => crypto.sm4Encrypt(key, iv, data)));
}

export function sm4Decrypt(key, iv, data) {
  return new Uint8Array(withKey(() => crypto.sm4Decrypt(key, iv, data)));
}
