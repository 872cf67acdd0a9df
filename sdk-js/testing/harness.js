/**
 * Run an adapter natively against scripted department exchanges, without a gateway.
 *
 * Under `node --import sdk-js/testing/register.js --test`, the contract's imports resolve to
 * fakes that answer from the `Harness` made last (a test makes one, then calls the adapter's
 * exports directly): `department-http.send` answers from the exchanges the test scripted, in
 * order (the request the adapter must send, the department's answer); `config.get` the settings
 * given; `cache` keeps values with expiry on a clock the test moves (`advance`); `materials.read`
 * reads the materials given, recording each read; `log` records; `crypto` digests with real SM3
 * and HMAC (Node's OpenSSL) and signs with *fake* keys. `finish()` fails the test with every
 * discrepancy at once: exchanges not made, requests not the one expected next, headers or bodies
 * not as asked.
 *
 * Like the host:
 * - a request nobody scripted is answered `forbidden` (and recorded, so the test fails);
 * - a path that is not relative to the department (absolute URL, `//`, `..`) is `forbidden`;
 * - response header names are lowercase;
 * - material parts of a body are streamed from the materials (raw or Base64), the adapter never
 *   holding them;
 * - `crypto.sign` with a public key, or an unknown key, is `unknown-key`.
 *
 * The fake signature is `FAKE-SM2` + SHA-256 over the key's identity and the data: not SM2, but
 * it changes with every byte signed and with the key; `harness.sign` gives a test the
 * department's signature of an answer it scripts.
 */

import { createHash, createHmac } from 'node:crypto';

let current;

/** The harness of the test running (the fakes' target). */
export function active() {
  if (!current) throw new Error('no Harness: make one (new Harness()) before calling the adapter');
  return current;
}

/** An import's error as a component sees it: a thrown value with the variant as `payload`. */
class HostError extends Error {
  constructor(tag, val) {
    super(`${tag}: ${val}`);
    this.payload = { tag, val };
  }
}

const utf8 = (text) => new TextEncoder().encode(text);
const toBytes = (body) =>
  typeof body === 'string' ? utf8(body) : body instanceof Uint8Array ? body : Uint8Array.from(body);
const sm3 = (data) => new Uint8Array(createHash('sm3').update(data).digest());

/** The SM3 of bytes, lowercase hex (what a test expects an adapter to send). */
export function sm3Hex(data) {
  return Buffer.from(sm3(toBytes(data))).toString('hex');
}

/** HMAC-SHA256 hex (a department's signature of a callback it scripts). */
export function hmacSha256Hex(key, data) {
  return createHmac('sha256', key).update(toBytes(data)).digest('hex');
}

/** The harness's stand-in for a signature by the key `identity` over `data`. */
export function fakeSignature(identity, data) {
  const digest = createHash('sha256').update(`${identity}\0`).update(toBytes(data)).digest();
  return new Uint8Array(Buffer.concat([Buffer.from('FAKE-SM2'), digest]));
}

/** A request the adapter sent: method, path, headers (as written), body bytes. */
export class Sent {
  constructor(method, path, headers, body, streamed) {
    Object.assign(this, { method, path, headers, body, streamed });
  }

  header(name) {
    const found = this.headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
    return found ? found[1] : undefined;
  }

  text() {
    return new TextDecoder().decode(this.body);
  }

  json() {
    return JSON.parse(this.text());
  }
}

/** One scripted exchange: what the adapter must send, and the department's answer. */
export class Exchange {
  constructor(method, path) {
    this.method = method;
    this.path = path;
    this.checks = [];
    this.answer = undefined;
  }

  static get(path) {
    return new Exchange('GET', path);
  }

  static post(path) {
    return new Exchange('POST', path);
  }

  static put(path) {
    return new Exchange('PUT', path);
  }

  /** The request must carry this header with this value (names compared case-blind). */
  header(name, value) {
    this.checks.push((sent) => {
      const got = sent.header(name);
      return got === value ? undefined : `header ${name} is ${JSON.stringify(got)}, expected ${JSON.stringify(value)}`;
    });
    return this;
  }

  /** The request must not carry this header. */
  headerAbsent(name) {
    this.checks.push((sent) =>
      sent.header(name) === undefined ? undefined : `header ${name} present, expected none`,
    );
    return this;
  }

  /** The body must be exactly these bytes (or this UTF-8 text). */
  body(expected) {
    const want = toBytes(expected);
    this.checks.push((sent) =>
      Buffer.from(sent.body).equals(Buffer.from(want))
        ? undefined
        : `body ${JSON.stringify(sent.text().slice(0, 200))} is not ${JSON.stringify(new TextDecoder().decode(want).slice(0, 200))}`,
    );
    return this;
  }

  /** The body must be JSON that `check` accepts (it throws, e.g. an `assert`, when not). */
  bodyJson(check) {
    this.checks.push((sent) => {
      try {
        check(sent.json());
        return undefined;
      } catch (e) {
        return `body: ${e.message}`;
      }
    });
    return this;
  }

  /** The body must stream (part of) material `code` from the host, not carry its bytes. */
  streams(code) {
    this.checks.push((sent) =>
      sent.streamed.includes(code) ? undefined : `material ${code} was not streamed by the host`,
    );
    return this;
  }

  respond(status, headers, body) {
    this.answer = () => ({ status, headers, body: toBytes(body) });
    return this;
  }

  respondJson(status, value) {
    return this.respond(status, [['Content-Type', 'application/json']], JSON.stringify(value));
  }

  /** An answer computed from the request: `(sent) => ({status, headers, body})`. */
  respondWith(answer) {
    this.answer = (sent) => {
      const a = answer(sent);
      return { status: a.status, headers: a.headers ?? [], body: toBytes(a.body ?? '') };
    };
    return this;
  }

  /** The department cannot be reached for this request. */
  failUnavailable() {
    this.answer = undefined;
    return this;
  }
}

/** Fake imports for one test; see the module's doc. Making one makes it the active one. */
export class Harness {
  constructor() {
    this.settings = new Map();
    this.keys = new Map();
    this.script = [];
    this.problems = [];
    this.sent = [];
    this.logLines = [];
    this.signed = [];
    this.readLog = [];
    this.files = new Map();
    this.materialList = [];
    this.store = new Map();
    this.now = 0;
    this.imports = {
      'department-http': { send: (request) => this.#send(request) },
      materials: { read: (code, offset, max) => this.#read(code, offset, max) },
      config: { get: (key) => this.settings.get(key) },
      cache: {
        get: (key) => this.cacheValue(key),
        set: (key, value, ttl) => this.store.set(key, { value: toBytes(value), expires: this.now + ttl }),
        delete: (key) => this.store.delete(key),
      },
      log: { log: (level, message) => this.logLines.push(`${level} ${message}`) },
      crypto: {
        sign: (key, algorithm, data) => this.#sign(key, data),
        verify: (key, algorithm, data, signature) => this.#verify(key, data, signature),
        mac: (key, algorithm, data) => this.#mac(key, algorithm, data),
        sm3: (data) => sm3(data),
        sm4Encrypt: () => {
          throw new HostError('unknown-key', 'the harness holds no SM4 keys');
        },
        sm4Decrypt: () => {
          throw new HostError('unknown-key', 'the harness holds no SM4 keys');
        },
      },
    };
    current = this;
  }

  // -- building ---------------------------------------------------------------------------

  setting(key, value) {
    this.settings.set(key, value);
    return this;
  }

  /** A value already in the adapter's cache, for `ttlMs` from now. */
  cached(key, value, ttlMs) {
    this.store.set(key, { value: toBytes(value), expires: this.now + ttlMs });
    return this;
  }

  /** A private key the host holds under `name` (signs, verifies its own signatures). */
  privateKey(name, identity = name) {
    this.keys.set(name, { kind: 'private', identity });
    return this;
  }

  /** A public key under `name` verifying the signatures of `identity`. */
  publicKey(name, identity) {
    this.keys.set(name, { kind: 'public', identity });
    return this;
  }

  /** A secret under `name` for `crypto.mac` (HMAC with these bytes). */
  secret(name, bytes) {
    this.keys.set(name, { kind: 'secret', bytes: toBytes(bytes) });
    return this;
  }

  /** An uploaded file of the call: its bytes stay here, the adapter sees its file-info. */
  material(code, name, mediaType, bytes) {
    const data = toBytes(bytes);
    this.files.set(code, data);
    this.materialList.push({
      code,
      name,
      source: { tag: 'file', val: { mediaType, size: BigInt(data.length), sm3: sm3Hex(data) } },
    });
    return this;
  }

  /** A 免提交 licence of the call (`{id, kind, number}`). */
  licence(code, name, ref) {
    this.materialList.push({ code, name, source: { tag: 'licence', val: { ...ref } } });
    return this;
  }

  /** A promised material (容缺), due on `due` (`YYYY-MM-DD`) or undefined. */
  promised(code, name, due) {
    this.materialList.push({ code, name, source: { tag: 'promised', val: due } });
    return this;
  }

  expect(exchange) {
    this.script.push(exchange);
    return this;
  }

  // -- reading ----------------------------------------------------------------------------

  /** The materials as a submission carries them, sorted by code (as the host sends them). */
  materials() {
    return [...this.materialList].sort((a, b) => (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
  }

  /** The cached value under `key` (bytes), if not expired. */
  cacheValue(key) {
    const entry = this.store.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.now) {
      this.store.delete(key);
      return undefined;
    }
    return entry.value;
  }

  cacheString(key) {
    const value = this.cacheValue(key);
    return value === undefined ? undefined : new TextDecoder().decode(value);
  }

  /** Move the cache's clock on. */
  advance(ms) {
    this.now += ms;
  }

  /** The log lines, `"<level> <message>"`. */
  logs() {
    return [...this.logLines];
  }

  /** The materials' reads: `{code, offset, max, got}`. */
  reads() {
    return [...this.readLog];
  }

  /** `identity`'s signature of `data` (for answers a test scripts). */
  sign(identity, data) {
    return fakeSignature(identity, data);
  }

  /** Fail with every discrepancy: requests not as expected, exchanges not made. */
  finish() {
    const problems = [
      ...this.problems,
      ...this.script.map((e) => `expected ${e.method} ${e.path}, never sent`),
    ];
    if (current === this) current = undefined;
    if (problems.length > 0) {
      throw new Error(`department exchanges:\n- ${problems.join('\n- ')}`);
    }
  }

  // -- the fakes --------------------------------------------------------------------------

  #send(request) {
    const streamed = [];
    const chunks = request.body.map((p) => {
      if (p.tag === 'bytes') return Buffer.from(p.val);
      const { code, offset, length, encoding } = p.val;
      const file = this.files.get(code);
      if (!file) {
        this.problems.push(`material ${code} streamed, but the call has no such file`);
        throw new HostError('forbidden', `no material ${code}`);
      }
      streamed.push(code);
      const start = Number(offset);
      const end = length === undefined ? file.length : Math.min(file.length, start + Number(length));
      const slice = Buffer.from(file.subarray(start, end));
      return encoding === 'base64' ? Buffer.from(slice.toString('base64')) : slice;
    });
    const sent = new Sent(request.method, request.path, request.headers, new Uint8Array(Buffer.concat(chunks)), streamed);
    this.sent.push(sent);
    const path = request.path;
    if (!path.startsWith('/') || path.startsWith('//') || `${path}/`.includes('/../') || path.includes('://')) {
      this.problems.push(`path ${JSON.stringify(path)} would be refused by the host`);
      throw new HostError('forbidden', `path ${path} is not relative to the department`);
    }
    const next = this.script.shift();
    if (!next) {
      this.problems.push(`unexpected ${sent.method} ${path}`);
      throw new HostError('forbidden', 'no exchange scripted');
    }
    if (next.method !== sent.method || next.path !== path) {
      this.problems.push(`sent ${sent.method} ${path}, expected ${next.method} ${next.path}`);
    }
    for (const check of next.checks) {
      const wrong = check(sent);
      if (wrong) this.problems.push(`${sent.method} ${path}: ${wrong}`);
    }
    if (!next.answer) throw new HostError('unavailable', 'connection refused (scripted)');
    const answer = next.answer(sent);
    return {
      status: answer.status,
      headers: answer.headers.map(([k, v]) => [k.toLowerCase(), v]),
      body: answer.body,
    };
  }

  #read(code, offset, max) {
    const file = this.files.get(code);
    if (!file) throw new HostError('unknown', code);
    const start = Number(offset);
    const size = Math.min(max, 1 << 20);
    const bytes = file.subarray(Math.min(start, file.length), Math.min(file.length, start + size));
    this.readLog.push({ code, offset: start, max, got: bytes.length });
    return new Uint8Array(bytes);
  }

  #sign(key, data) {
    const k = this.keys.get(key);
    if (!k || k.kind !== 'private') throw new HostError('unknown-key', key);
    this.signed.push([key, new Uint8Array(data)]);
    return fakeSignature(k.identity, data);
  }

  #verify(key, data, signature) {
    const k = this.keys.get(key);
    if (!k || k.kind === 'secret') throw new HostError('unknown-key', key);
    if (!Buffer.from(signature).subarray(0, 8).equals(Buffer.from('FAKE-SM2'))) {
      throw new HostError('invalid', 'not a signature');
    }
    return Buffer.from(signature).equals(Buffer.from(fakeSignature(k.identity, data)));
  }

  #mac(key, algorithm, data) {
    const k = this.keys.get(key);
    if (!k || k.kind !== 'secret') throw new HostError('unknown-key', key);
    const hash = algorithm === 'hmac-sm3' ? 'sm3' : 'sha256';
    return new Uint8Array(createHmac(hash, k.bytes).update(data).digest());
  }
}
