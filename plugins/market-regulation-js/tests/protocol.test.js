// The protocol as pure functions: the Rust adapter's unit tests (src/protocol.rs, lifecycle.rs,
// uploads.rs), ported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hmacSha256Hex } from '../../../sdk-js/testing/harness.js';

/** What the host answers for the key holding `secret`, over `body`. */
const under = (secret, body) => (signature) => hmacSha256Hex(secret, body) === signature.toLowerCase();
import * as p from '../protocol.js';
import * as lifecycle from '../lifecycle.js';
import * as uploads from '../uploads.js';
import { loadAdapter } from '../../../sdk-js/testing/component.js';

// The source, or the built component when GOV_ADAPTER_COMPONENT names it (cargo xtask js-tests).
const adapter = await loadAdapter(import.meta.url);

const enc = (v) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const tagOf = (fn) => {
  try {
    fn();
  } catch (e) {
    return e.payload;
  }
  return undefined;
};
const codes = (problems) => problems.map((x) => [x.field, x.code]);

const GOOD = JSON.stringify({
  enterprise_name: '福州新设科技有限公司', address: '福州市鼓楼区五四路2号',
  legal_representative: { name: '李四', id_number: '34052419800101001X' },
  registered_capital: 100, business_scope: '软件开发',
});
const PERMIT = JSON.stringify({
  credit_code: '91350100M000100Y43', enterprise_name: '福州测试科技有限公司', address: '福州市鼓楼区五四路1号',
  legal_representative: { name: '张三', id_number: '11010519491231002X' },
  business_items: ['热食类食品制售', ' 冷食类食品制售 '], premises_area: 120.5,
});

test('describe lists both matters with parsable schemas', () => {
  const d = adapter.describe();
  assert.equal(d.department, 'market-regulation');
  assert.equal(d.contractVersion, '0.3.0');
  assert.deepEqual(d.matters.map((m) => [m.code, m.name]), [
    ['market-regulation.business-licence', '营业执照设立登记'],
    ['market-regulation.food-permit', '食品经营许可'],
  ]);
  for (const m of d.matters) assert.equal(JSON.parse(m.inputSchema).$schema, 'https://json-schema.org/draft/2020-12/schema');
  assert.equal(d.lookups[0].name, 'market-regulation.enterprise');
});

test('the licence body uses the department fields', () => {
  assert.deepEqual(p.licenceBody(p.licence(GOOD).value, 'key-1', 'https://gw.example/callbacks/market-regulation'), {
    requestId: 'key-1', name: '福州新设科技有限公司', address: '福州市鼓楼区五四路2号',
    legalRepresentative: { name: '李四', idNumber: '34052419800101001X' },
    registeredCapital: 100, businessScope: '软件开发', callbackUrl: 'https://gw.example/callbacks/market-regulation',
  });
});

test('validation reports every problem at once', () => {
  const payload = JSON.stringify({
    enterprise_name: 'x', legal_representative: { id_number: '34052419800101001Y' }, registered_capital: -5,
  });
  assert.deepEqual(codes(p.validate(p.BUSINESS_LICENCE, payload)), [
    ['address', 'required'], ['legal_representative.name', 'required'],
    ['legal_representative.id_number', 'format'], ['registered_capital', 'range'], ['business_scope', 'required'],
  ]);
  assert.deepEqual(p.validate(p.BUSINESS_LICENCE, GOOD), []);
  assert.equal(p.validate(p.BUSINESS_LICENCE, '{}').length, 6);
  assert.deepEqual(codes(p.validate('market-regulation.other', GOOD)), [['', 'unknown_matter']]);
  // A payload whose types disagree with the schema is one format problem of the whole.
  assert.deepEqual(codes(p.validate(p.BUSINESS_LICENCE, '{"registered_capital": "lots"}')), [['', 'format']]);
});

test('tokens', () => {
  assert.equal(p.tokenForm('gw-demo', 'mr demo&secret'), 'grant_type=client_credentials&client_id=gw-demo&client_secret=mr+demo%26secret');
  assert.equal(p.tokenTtlMs(600), 570_000);
  assert.equal(p.tokenTtlMs(30), 1_000);
  assert.equal(p.tokenTtlMs(0), 1_000);
  assert.deepEqual(p.readToken(200, enc({ access_token: 'abc', token_type: 'Bearer', expires_in: 600 })), { accessToken: 'abc', ttlMs: 570_000 });
  const refused = tagOf(() => p.readToken(401, enc({ error: 'invalid_client' })));
  assert.ok(refused.tag === 'internal' && refused.val.includes('invalid_client'));
  assert.equal(tagOf(() => p.readToken(503, enc(''))).tag, 'unavailable');
  assert.equal(tagOf(() => p.readToken(200, enc('garbage'))).tag, 'protocol');
});

test('submission answers', () => {
  const r = p.readSubmitted(202, enc({ applicationNo: 'SCJG2025010100000001', status: 'ACCEPTED' }));
  assert.deepEqual([r.reference, r.state, r.outputs], ['SCJG2025010100000001', 'accepted', '{}']);
  assert.deepEqual(tagOf(() => p.readSubmitted(409, enc({ error: 'name_taken', message: '企业名称已被登记' }))), {
    tag: 'rejected', val: { code: 'name_taken', message: '企业名称已被登记' },
  });
  const invalid = tagOf(() => p.readSubmitted(422, enc({ error: 'invalid', message: '注册资本须为正数' })));
  assert.equal(invalid.val[0].message, '注册资本须为正数');
  assert.ok(tagOf(() => p.readSubmitted(502, enc(''))).val.includes('502'));
  assert.equal(tagOf(() => p.readSubmitted(200, new Uint8Array([0xff, 0xfe, 0x3c]))).tag, 'protocol');
  assert.equal(tagOf(() => p.readSubmitted(202, enc({ status: 'ACCEPTED' }))).tag, 'protocol');
  assert.equal(tagOf(() => p.readSubmitted(401, enc({ error: 'invalid_token' }))).tag, 'protocol');
});

test('status answers', () => {
  assert.equal(p.readStatus(200, enc({ applicationNo: 'SCJG1', status: 'ACCEPTED' })).state, 'accepted');
  const done = { applicationNo: 'SCJG1', status: 'APPROVED', uscc: '91110000600037341L', licenceNo: 'L1' };
  const r = p.readStatus(200, enc(done));
  assert.equal(r.state, 'approved');
  assert.deepEqual(JSON.parse(r.outputs), { credit_code: '91110000600037341L', licence_no: 'L1' });
  assert.equal(tagOf(() => p.readStatus(200, enc({ ...done, uscc: '91110000600037341M' }))).tag, 'protocol');
  assert.equal(tagOf(() => p.readStatus(404, enc({ error: 'not_found' }))).val.code, 'not_found');
  assert.equal(tagOf(() => p.readStatus(200, enc({ applicationNo: 'SCJG1', status: 'LOST' }))).tag, 'protocol');
  assert.equal(p.licencePath('SCJG1'), '/api/licences/SCJG1');
  assert.equal(p.licencePath('../x'), '/api/licences/..%2Fx');
});

test('callbacks are verified', () => {
  const body = enc({ applicationNo: 'SCJG1', requestId: 'k', status: 'APPROVED', uscc: '91110000600037341L', licenceNo: 'L1' });
  const headers = [['x-signature', hmacSha256Hex('mr-callback-secret', body).toUpperCase()]];
  const r = p.readCallback(headers, body, under('mr-callback-secret', body));
  assert.deepEqual([r.reference, r.state], ['SCJG1', 'approved']);
  assert.equal(JSON.parse(r.outputs).credit_code, '91110000600037341L');
  for (const wrong of [
    () => p.readCallback(headers, body, under('other-secret', body)),
    () => p.readCallback([], body, under('mr-callback-secret', body)),
    () => p.readCallback(headers, body.subarray(0, body.length - 1), under('mr-callback-secret', body.subarray(0, body.length - 1))),
  ]) {
    const e = tagOf(wrong);
    assert.deepEqual([e.tag, e.val[0].field, e.val[0].code], ['invalid-input', 'X-Signature', 'signature']);
  }
  const notJson = enc('not json');
  assert.equal(tagOf(() => p.readCallback([['X-Signature', hmacSha256Hex('s', notJson)]], notJson, under('s', notJson))).tag, 'protocol');
});

test('enterprise queries and answers', () => {
  assert.equal(p.enterpriseQuery('{"credit_code":"91350100m000100y43"}').value, '91350100M000100Y43');
  // A pilot code failing only its check character goes to the department.
  assert.ok(p.enterpriseQuery('{"credit_code":"91350100M0001TGQXM"}').value);
  assert.deepEqual(codes(p.enterpriseQuery('{"credit_code":"913501"}').problems), [['credit_code', 'length']]);
  assert.deepEqual(codes(p.enterpriseQuery('{}').problems), [['credit_code', 'required']]);
  const body = {
    uscc: '91350100M000100Y43', name: '福州测试科技有限公司', address: '福州市鼓楼区五四路1号',
    legalRepresentative: '张三', registeredCapital: 500, status: '存续',
  };
  assert.deepEqual(p.readEnterprise(200, enc(body)), {
    credit_code: '91350100M000100Y43', name: '福州测试科技有限公司', address: '福州市鼓楼区五四路1号',
    legal_representative: '张三', registered_capital: 500, status: '存续',
  });
  assert.equal(tagOf(() => p.readEnterprise(404, enc({ error: 'not_found' }))).val.code, 'not_found');
});

test('food permits: body, every problem at once, answers', () => {
  assert.deepEqual(p.validate(p.FOOD_PERMIT, PERMIT), []);
  assert.deepEqual(p.foodPermitBody(p.foodPermit(PERMIT).value, 'key-3').businessItems, ['热食类食品制售', '冷食类食品制售']);
  const payload = JSON.stringify({
    credit_code: '91350100M0001TGQXM', enterprise_name: 'x',
    legal_representative: { name: '张三', id_number: '110105194912310021' },
    business_items: ['热食类食品制售', ' '], premises_area: 0,
  });
  assert.deepEqual(codes(p.validate(p.FOOD_PERMIT, payload)), [
    ['credit_code', 'checksum'], ['address', 'required'], ['legal_representative.id_number', 'checksum'],
    ['business_items.1', 'required'], ['premises_area', 'range'],
  ]);
  assert.equal(p.validate(p.FOOD_PERMIT, '{}').length, 7);
  assert.ok(p.validate(p.FOOD_PERMIT, GOOD).length > 0);
  const done = p.readPermitStatus(200, enc({ applicationNo: 'SPJY1', status: 'APPROVED', permitNo: 'JY13501020000017' }));
  assert.deepEqual(JSON.parse(done.outputs), { permit_no: 'JY13501020000017' });
  for (const bad of [
    { applicationNo: 'SPJY1', status: 'APPROVED' },
    { applicationNo: 'SPJY1', status: 'APPROVED', permitNo: 'JY1350102' },
    { applicationNo: 'SPJY1', status: 'APPROVED', permitNo: 'XK13501020000017' },
    { applicationNo: 'SPJY1', status: 'LOST' },
  ]) assert.equal(tagOf(() => p.readPermitStatus(200, enc(bad))).tag, 'protocol');
  assert.equal(p.foodPermitPath('../x'), '/api/food-permits/..%2Fx');
});

test('supplements and returns in the department names', () => {
  assert.deepEqual(lifecycle.supplementBody('K1', '{"business_scope": "软件开发、技术服务", "registered_capital": 200}').value, {
    requestId: 'K1', fields: { businessScope: '软件开发、技术服务', registeredCapital: 200 },
  });
  assert.equal(lifecycle.supplementBody('K1', '{"enterprise_name": "x", "registered_capital": 0}').problems[0].field, 'enterprise_name');
  assert.equal(lifecycle.supplementBody('K1', '{"registered_capital": -1}').problems[0].code, 'range');
  const asked = lifecycle.requested({
    applicationNo: 'SCJG1', status: 'RETURNED', supplement: {
      reason: '请补正', dueDate: '2027-01-02',
      fields: [{ field: 'businessScope', reason: '经营范围不得以等字概括' }],
      materials: [{ code: 'articles-of-association', reason: '章程经营范围须一致' }],
    },
  });
  assert.equal(asked.fields[0].field, 'business_scope');
  assert.equal(asked.materials[0].code, 'articles-of-association');
  assert.equal(asked.due, '2027-01-02');
  assert.throws(() => lifecycle.requested({ status: 'RETURNED' }));
  assert.deepEqual(adapter.withdraw({ caseId: 'c', matter: p.FOOD_PERMIT, reference: undefined, idempotencyKey: 'k', reason: '' }).state, 'withdrawn');
});

test('uploads: what the department has, and refusals for the gateway to send again', () => {
  const opened = uploads.readOpened(200, enc({ fileId: 'F1', chunkSize: 1048576, chunks: 3, received: [0, 2], status: 'UPLOADING' }), 3 << 20);
  assert.deepEqual([...opened.received], [0, 2]);
  assert.equal(opened.complete, false);
  for (const bad of [
    { fileId: '', chunkSize: 1024, status: 'UPLOADING' },
    { fileId: 'F', chunkSize: 0, status: 'UPLOADING' },
    { fileId: 'F', chunkSize: 1024, received: [1], status: 'UPLOADING' },
    { fileId: 'F', chunkSize: 1024, status: 'LOST' },
  ]) assert.equal(tagOf(() => uploads.readOpened(201, enc(bad), 1024)).tag, 'protocol');
  assert.equal(tagOf(() => uploads.readOpened(201, enc('<html>'), 1024)).tag, 'protocol');
  assert.equal(tagOf(() => uploads.readChunk(503, enc(''))).tag, 'unavailable');
  const file = { mediaType: 'application/pdf', size: 5n, sm3: 'ab'.repeat(32) };
  uploads.readCompleted(200, enc({ fileId: 'F', status: 'COMPLETE', sm3: 'AB'.repeat(32), size: 5 }), file);
  assert.equal(tagOf(() => uploads.readCompleted(200, enc({ fileId: 'F', status: 'COMPLETE', sm3: 'cd'.repeat(32), size: 5 }), file)).tag, 'protocol');
  assert.equal(uploads.chunkPath('F/1', 2), '/v2/files/F%2F1/chunks/2');
  assert.deepEqual(
    uploads.materialsField([{ code: 'premises-proof', name: '住所使用证明', source: { tag: 'promised', val: undefined } }], new Map()),
    [{ code: 'premises-proof', name: '住所使用证明', promised: { due: null } }],
  );
});
