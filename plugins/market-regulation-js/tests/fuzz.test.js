// Property tests for reading the market-regulation department's answers, the Rust adapter's
// tests/fuzz.rs ported: any status and any body, near-valid answers (a field dropped or replaced,
// the bytes cut short or changed), callbacks with any headers — every reader answers with a value
// or an AdapterFailure of the kind its doc promises, never a TypeError (which would trap the
// instance). A seeded generator, no dependency: 400 cases per property, or FUZZ_CASES; a failure
// prints its seed, and FUZZ_SEED replays it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterFailure } from '../../../sdk-js/gov-adapter/index.js';
import { hmacSha256Hex } from '../../../sdk-js/testing/harness.js';
import * as p from '../protocol.js';

const CASES = Number(process.env.FUZZ_CASES ?? 400);
const SEED = Number(process.env.FUZZ_SEED ?? 20261204);

/** mulberry32: small, seeded, good enough to vary inputs. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID = [
  { access_token: 't0k', token_type: 'Bearer', expires_in: 7200 },
  { applicationNo: 'SCJG1', status: 'ACCEPTED' },
  { applicationNo: 'SCJG1', requestId: 'k', status: 'APPROVED', uscc: '91110000600037341L', licenceNo: 'L1', name: '福州测试科技有限公司' },
  { applicationNo: 'SPJY1', status: 'APPROVED', permitNo: 'JY13501000000001' },
  { applicationNo: 'SCJG1', status: 'REJECTED', message: '名称不符合规定' },
  { applicationNo: 'SCJG1', status: 'RETURNED', supplement: { fields: ['businessScope'], materials: ['premises_proof'], message: '请补正' } },
  { uscc: '91350100M000100Y43', name: '福州测试科技有限公司', address: '福州市鼓楼区五四路1号', legalRepresentative: '张三', registeredCapital: 100, status: '存续' },
  { error: 'name_taken', message: '企业名称已被占用' },
  { error: 'invalid_client' },
];
const WORDS = ['ACCEPTED', 'PROCESSING', 'APPROVED', 'REJECTED', 'RETURNED', 'JY13501000000001', '91110000600037341L', ''];
const STATUSES = [200, 201, 202, 400, 401, 404, 409, 422, 500, 503];

function anyValue(r, depth = 0) {
  const pick = Math.floor(r() * (depth > 1 ? 5 : 7));
  switch (pick) {
    case 0: return null;
    case 1: return r() < 0.5;
    case 2: return Math.floor((r() - 0.5) * 1e6) / (r() < 0.3 ? 7 : 1);
    case 3: return WORDS[Math.floor(r() * WORDS.length)];
    case 4: return String.fromCodePoint(...Array.from({ length: Math.floor(r() * 6) }, () => Math.floor(r() * 0x2ffff)));
    case 5: return Array.from({ length: Math.floor(r() * 3) }, () => anyValue(r, depth + 1));
    default: return Object.fromEntries(Array.from({ length: Math.floor(r() * 3) }, (_, i) => [`k${i}`, anyValue(r, depth + 1)]));
  }
}

/** A body: a valid answer mutated, or bytes of anything. */
function body(r) {
  const kind = r();
  if (kind < 0.15) return Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256));
  const value = structuredClone(VALID[Math.floor(r() * VALID.length)]);
  const keys = Object.keys(value);
  const key = keys[Math.floor(r() * keys.length)];
  if (kind < 0.4) delete value[key];
  else if (kind < 0.75) value[key] = anyValue(r);
  let bytes = new TextEncoder().encode(JSON.stringify(kind < 0.85 ? value : [value]));
  if (r() < 0.15) bytes = bytes.subarray(0, Math.floor(r() * bytes.length));
  if (r() < 0.1 && bytes.length > 0) bytes[Math.floor(r() * bytes.length)] ^= 1 + Math.floor(r() * 255);
  return bytes;
}

/** What a reader did: its value, or the failure it threw (anything else fails the test). */
function outcome(read) {
  try {
    return { value: read() };
  } catch (e) {
    assert.ok(e instanceof AdapterFailure, `not an AdapterFailure: ${e?.stack ?? e}`);
    return { failure: e.payload };
  }
}

/** The kinds an API answer's error may be (see `apiError`). */
function apiKindOk(status, failure) {
  switch (failure.tag) {
    case 'unavailable': return status >= 500;
    case 'rejected': return status < 500 && (status === 404 || status === 409) && typeof failure.val.code === 'string' && failure.val.code !== '';
    case 'invalid-input': return status === 422 && failure.val.length === 1;
    case 'protocol': return status < 500 && ![404, 409, 422].includes(status);
    default: return false;
  }
}

function forEachCase(property) {
  for (let i = 0; i < CASES; i++) {
    const seed = SEED + i;
    const r = random(seed);
    try {
      property(r);
    } catch (e) {
      e.message = `seed ${seed} (FUZZ_SEED=${seed} FUZZ_CASES=1): ${e.message}`;
      throw e;
    }
  }
}

test('every reader answers any answer with a value or the error its doc promises', () => {
  forEachCase((r) => {
    const status = STATUSES[Math.floor(r() * STATUSES.length)];
    const bytes = body(r);
    const detail = () => `HTTP ${status} ${new TextDecoder().decode(bytes)}`;
    assert.ok(apiKindOk(status, p.apiError(status, bytes).payload), detail());
    const token = outcome(() => p.readToken(status, bytes));
    if (token.value) {
      assert.ok(token.value.accessToken !== '' && token.value.ttlMs >= 1000, detail());
    } else {
      const { tag } = token.failure;
      const ok = tag === 'unavailable' ? status >= 500
        : tag === 'internal' ? [400, 401].includes(status)
          : tag === 'protocol' && status < 500 && ![400, 401].includes(status);
      assert.ok(ok, `token: ${detail()}: ${JSON.stringify(token.failure)}`);
    }
    for (const read of [p.readSubmitted, p.readPermitSubmitted, p.readStatus, p.readPermitStatus, p.readEnterprise]) {
      const got = outcome(() => read(status, bytes));
      if (got.value) {
        const outputs = got.value.outputs;
        if (outputs !== undefined) assert.doesNotThrow(() => JSON.parse(outputs), detail());
      } else {
        assert.ok(apiKindOk(status, got.failure), `${read.name}: ${detail()}: ${JSON.stringify(got.failure)}`);
      }
    }
  });
});

test('unsigned callbacks are refused and signed ones read, whatever their headers', () => {
  const SECRET = 'callback-secret';
  forEachCase((r) => {
    const bytes = body(r);
    const headers = Array.from({ length: Math.floor(r() * 4) }, () => [
      ['X-Signature', 'x-signature', 'X-Other', 'Content-Type'][Math.floor(r() * 4)],
      String(anyValue(r)),
    ]);
    const sign = r() < 0.5;
    if (sign) headers.push(['x-signature', hmacSha256Hex(SECRET, bytes)]);
    const genuine = (signature) => hmacSha256Hex(SECRET, bytes) === signature.toLowerCase();
    // The first X-Signature is the one read, as in the Rust adapter.
    const first = headers.find(([name]) => name.toLowerCase() === 'x-signature');
    const signed = first !== undefined && genuine(first[1].trim());
    const got = outcome(() => p.readCallback(headers, bytes, genuine));
    if (got.value) {
      assert.ok(signed && got.value.reference !== '');
    } else if (got.failure.tag === 'invalid-input') {
      assert.ok(!signed);
      assert.equal(got.failure.val[0].field, 'X-Signature');
    } else {
      assert.equal(got.failure.tag, 'protocol');
      assert.ok(signed);
    }
  });
});

test('unreadable bodies are protocol errors', () => {
  forEachCase((r) => {
    const bytes = Uint8Array.from({ length: 1 + Math.floor(r() * 64) }, () => Math.floor(r() * 256));
    let readable = true;
    try {
      JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      readable = false;
    }
    if (readable) return;
    for (const read of [() => p.readToken(200, bytes), () => p.readSubmitted(202, bytes), () => p.readPermitStatus(200, bytes), () => p.readEnterprise(200, bytes)]) {
      assert.equal(outcome(read).failure?.tag, 'protocol');
    }
  });
});
