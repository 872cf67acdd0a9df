// The helper library natively, under the harness: node --import ./sdk-js/testing/register.js --test sdk-js/tests
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  AdapterFailure, FixedFormatError, GBK, Layout, Request, Problems, cache, chunks, chunkSm3Hex, creditCodeProblem, decodeGb18030,
  encodeGb18030, encodeGbk, hex, log, mac, percentEncode, requireSetting, residentIdProblem,
  sign, utf8, verify, verifyMacHex,
} from '../gov-adapter/index.js';
import { Exchange, Harness, sm3Hex } from '../testing/harness.js';

test('identifiers are judged as the Rust sdk judges them', () => {
  assert.equal(creditCodeProblem('91350100M000100Y43'), undefined);
  assert.equal(creditCodeProblem('91350100M0001TGQXM').code, 'checksum');
  assert.equal(creditCodeProblem('913501').message, '统一社会信用代码应为18位，实为6位');
  assert.equal(creditCodeProblem('91350100M000100YI3').code, 'format');
  assert.equal(residentIdProblem('11010519491231002X'), undefined);
  assert.equal(residentIdProblem('110105194912310021').code, 'checksum');
  assert.equal(residentIdProblem('11010519491331002X').code, 'date');
  assert.equal(residentIdProblem('1101051949').code, 'length');
});

test('problems are gathered and thrown at once as invalid-input', () => {
  const p = new Problems().required('name', ' ').required('capital', 0).residentId('id', '110105194912310021');
  assert.deepEqual(p.list().map((x) => [x.field, x.code]), [['name', 'required'], ['id', 'checksum']]);
  assert.throws(() => p.throwIfAny(), (e) => e instanceof AdapterFailure && e.payload.tag === 'invalid-input' && e.payload.val.length === 2);
});

test('a MAC is checked against the host key, in either case, and anything else is false', () => {
  const h = new Harness().secret('callback', 'k');
  for (const size of [0, 1, 64, 1000]) {
    const data = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
    const expected = createHmac('sha256', 'k').update(data).digest('hex');
    assert.equal(hex(mac('callback', data)), expected);
    assert.ok(verifyMacHex('callback', data, expected));
    assert.ok(verifyMacHex('callback', data, expected.toUpperCase()));
    assert.ok(!verifyMacHex('callback', data, createHmac('sha256', 'k2').update(data).digest('hex')));
  }
  assert.ok(!verifyMacHex('callback', 'data', 'zz'));
  assert.ok(!verifyMacHex('callback', 'data', ''));
  assert.ok(!verifyMacHex('callback', 'data', 'g'.repeat(64)));
  assert.throws(() => verifyMacHex('nobody', 'data', '00'), (e) => e.payload.tag === 'internal');
  h.finish();
});

test('GBK and GB18030 round-trip through the engine decoder', () => {
  assert.equal(hex(encodeGbk('中A')), 'd6d041');
  assert.equal(hex(encodeGb18030('€')), 'a2e3');
  assert.equal(hex(encodeGb18030('\u0080')), '81308130');
  assert.equal(hex(encodeGb18030('𠀀')), '95328236');
  assert.throws(() => encodeGbk('𠀀'), RangeError);
  const text = '福州市鼓楼区五四路2号 李四 ·—“” 𠮷 ';
  assert.equal(decodeGb18030(encodeGb18030(text)), text);
  assert.equal(percentEncode('a b/中'), 'a%20b%2F%E4%B8%AD');
});

test('host calls turn the host errors into the contract errors', () => {
  const h = new Harness()
    .setting('client-id', 'gw')
    .privateKey('gateway', 'gw')
    .expect(Exchange.get('/ping').header('X-A', '1').respondJson(200, { ok: true }))
    .expect(Exchange.get('/down').failUnavailable());
  assert.equal(requireSetting('client-id'), 'gw');
  assert.throws(() => requireSetting('absent'), (e) => e.payload.tag === 'internal');
  const answer = Request.get('/ping').header('X-A', '1').send();
  assert.equal(answer.status, 200);
  assert.equal(answer.header('content-type'), 'application/json');
  assert.deepEqual(answer.json(), { ok: true });
  assert.throws(() => Request.get('/down').send(), (e) => e.payload.tag === 'unavailable');
  assert.throws(() => Request.get('https://elsewhere/x').send(), (e) => e.payload.tag === 'internal');
  const signature = sign('gateway', new Uint8Array([1, 2]));
  assert.ok(verify('gateway', new Uint8Array([1, 2]), signature));
  assert.ok(!verify('gateway', new Uint8Array([1, 3]), signature));
  assert.throws(() => sign('absent', new Uint8Array([1])), (e) => e.payload.tag === 'internal');
  cache.set('token', 't', 1000);
  h.advance(999);
  assert.equal(cache.getString('token'), 't');
  h.advance(1);
  assert.equal(cache.getString('token'), undefined);
  log.info('hello');
  assert.deepEqual(h.logs(), ['info hello']);
  // The request to an absolute URL is a problem the harness reports.
  assert.throws(() => h.finish(), /would be refused/);
});

test('chunks and their digests read a material a slice at a time', () => {
  const bytes = new Uint8Array(2_500_000).map((_, i) => (i * 31) & 0xff);
  const h = new Harness().material('m', '材料', 'application/pdf', bytes);
  const parts = chunks(BigInt(bytes.length), 1 << 20);
  assert.deepEqual(parts.map((c) => c.length), [1 << 20, 1 << 20, bytes.length - (2 << 20)]);
  assert.equal(chunkSm3Hex('m', parts[2]), sm3Hex(bytes.subarray(2 << 20)));
  assert.ok(h.reads().every((r) => r.max <= 1 << 20));
  assert.deepEqual(chunks(0n, 1 << 20), [{ index: 0, offset: 0, length: 0 }]);
  h.finish();
});

test('fixed-length records count GB18030 bytes, pad, and tell every field that does not fit at once', () => {
  const layout = new Layout([
    { name: 'mc', width: 10, title: '名称' },
    { name: 'rs', width: 4, kind: 'number', title: '人数' },
  ]);
  const record = layout.pack({ mc: '社保局', rs: 7 });
  assert.equal(hex(record), `${hex(encodeGb18030('社保局'))}20202020${hex(new TextEncoder().encode('0007'))}`);
  assert.deepEqual(layout.unpack(record), { mc: '社保局', rs: 7 });
  // Every field that does not fit, at once; the record is still whole.
  const problems = new Problems();
  assert.equal(layout.pack({ mc: '六个汉字太长', rs: 12345 }, problems).length, 14);
  assert.deepEqual(problems.list().map((p) => [p.field, p.code]), [['mc', 'range'], ['rs', 'range']]);
  assert.match(problems.list()[0].message, /「名称」超出10字节.*12字节/);
  const negative = new Problems();
  layout.pack({ mc: '', rs: -1 }, negative);
  assert.deepEqual(negative.list().map((p) => p.code), ['format']);
  assert.throws(() => layout.pack({ mc: 'x'.repeat(11), rs: 1 }), FixedFormatError);
  // What is not the layout is refused, never guessed at.
  for (const bad of [utf8('short'), utf8('abc       00x1'), new Uint8Array([0xff, 0xff, ...utf8('        0001')])]) {
    assert.throws(() => layout.unpack(bad), FixedFormatError);
  }
  // A GBK layout refuses what GBK cannot hold, when packing and when reading.
  const gbk = new Layout([{ name: 'mc', width: 10 }], GBK);
  const refused = new Problems();
  gbk.pack({ mc: '𠀀' }, refused);
  assert.deepEqual(refused.list().map((p) => p.code), ['format']);
  assert.throws(() => gbk.unpack(new Uint8Array([...encodeGb18030('𠀀'), ...utf8('      ')])), FixedFormatError);
  assert.throws(() => new Layout([{ name: 'a', width: 0 }]), RangeError);
});
