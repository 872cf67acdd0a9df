// The market-regulation adapter's exports against a scripted department (sdk-js/testing): the
// same scripts as the Rust adapter's tests/harness.rs. Run: cargo xtask js-tests, or from the
// repository root: node --import ./sdk-js/testing/register.js --test plugins/market-regulation-js/tests
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exchange, Harness, hmacSha256Hex, sm3Hex } from '../../../sdk-js/testing/harness.js';
import { loadAdapter } from '../../../sdk-js/testing/component.js';
import { ENTERPRISE, FOOD_PERMIT, TOKEN_CACHE_KEY } from '../protocol.js';

// The source, or the built component when GOV_ADAPTER_COMPONENT names it (cargo xtask js-tests).
const adapter = await loadAdapter(import.meta.url);

const USCC = '91350100M000100Y43';

const harness = () =>
  new Harness()
    .setting('client-id', 'gateway')
    .setting('client-secret', 'p@ss word')
    .secret('callback-secret', 'cb');

const tokenGrant = (token, expiresIn) =>
  Exchange.post('/oauth/token')
    .header('Content-Type', 'application/x-www-form-urlencoded')
    .headerAbsent('Authorization')
    .body('grant_type=client_credentials&client_id=gateway&client_secret=p%40ss+word')
    .respondJson(200, { access_token: token, token_type: 'Bearer', expires_in: expiresIn });

const enterprise = (token) =>
  Exchange.get(`/api/enterprises/${USCC}`)
    .header('Authorization', `Bearer ${token}`)
    .respondJson(200, {
      uscc: USCC, name: '福州演示餐饮有限公司', address: '福州市鼓楼区五四路2号',
      legalRepresentative: '李四', registeredCapital: 100, status: '存续',
    });

const lookup = () => adapter.lookup(ENTERPRISE, JSON.stringify({ credit_code: USCC }));

test('the token is obtained once and cached', () => {
  const h = harness()
    .expect(tokenGrant('t-1', 3600))
    .expect(enterprise('t-1'))
    // The second lookup reuses the cached token: no grant in between.
    .expect(enterprise('t-1'));
  const answer = JSON.parse(lookup());
  assert.equal(answer.name, '福州演示餐饮有限公司');
  assert.equal(answer.legal_representative, '李四');
  lookup();
  assert.equal(h.cacheString(TOKEN_CACHE_KEY), 't-1');
  h.finish();
});

test('the token expires 30 seconds before the department says', () => {
  const h = harness()
    .expect(tokenGrant('t-1', 3600))
    .expect(enterprise('t-1'))
    .expect(enterprise('t-1'))
    .expect(tokenGrant('t-2', 3600))
    .expect(enterprise('t-2'));
  lookup();
  h.advance((3600 - 30) * 1000 - 1);
  lookup();
  h.advance(1);
  assert.equal(h.cacheValue(TOKEN_CACHE_KEY), undefined);
  lookup();
  h.finish();
});

test('a refused token is renewed and the call retried once', () => {
  const h = harness()
    .cached(TOKEN_CACHE_KEY, 'stale', 60_000)
    .expect(
      Exchange.get(`/api/enterprises/${USCC}`)
        .header('Authorization', 'Bearer stale')
        .respondJson(401, { error: 'invalid_token' }),
    )
    .expect(tokenGrant('t-2', 3600))
    .expect(enterprise('t-2'));
  lookup();
  assert.equal(h.cacheString(TOKEN_CACHE_KEY), 't-2');
  assert.ok(h.logs().some((l) => l.includes('token refused')));
  h.finish();
});

test('a fresh token refused again is a protocol error', () => {
  const refused = () => Exchange.get(`/api/enterprises/${USCC}`).respondJson(401, { error: 'invalid_token' });
  const h = harness()
    .expect(tokenGrant('t-1', 3600))
    .expect(refused())
    .expect(tokenGrant('t-2', 3600))
    .expect(refused());
  assert.throws(lookup, (e) => e.payload.tag === 'protocol');
  h.finish();
});

test('wrong client credentials are for an operator', () => {
  const h = harness().expect(Exchange.post('/oauth/token').respondJson(401, { error: 'invalid_client' }));
  assert.throws(lookup, (e) => e.payload.tag === 'internal' && e.payload.val.includes('client-secret'));
  h.finish();
});

// ---- materials: uploaded in chunks before the application that names them ----

const PERMIT = JSON.stringify({
  credit_code: '91350100M000100Y43', enterprise_name: '福州测试科技有限公司',
  address: '福州市鼓楼区五四路1号', legal_representative: { name: '张三', id_number: '11010519491231002X' },
  business_items: ['热食类食品制售'], premises_area: 120.5,
});
const CALLBACK = 'https://gw.example/callbacks/market-regulation';
const MIB = 1 << 20;

/** 2.5 MiB that are not a pattern: three chunks of 1 MiB, the last a half. */
function rules() {
  const head = new TextEncoder().encode('%PDF-1.7\n');
  const bytes = new Uint8Array((5 * MIB) / 2);
  bytes.set(head);
  for (let i = 0; i < bytes.length - head.length; i++) {
    bytes[head.length + i] = Number((BigInt(i) * 2654435761n) % 2n ** 32n >> 11n) & 0xff;
  }
  return bytes;
}
const RULES = rules();

const LICENCE = {
  id: '1.2.156.3005.2.11350100003501011L001.11350100003501011L.2025AB.001.X',
  kind: 'business_licence',
  number: '350100000000001',
};

const withMaterials = (bytes) =>
  harness()
    .cached(TOKEN_CACHE_KEY, 't-1', 60_000)
    .material('food-safety-rules', '食品安全管理制度', 'application/pdf', bytes)
    .licence('business-licence', '营业执照', LICENCE);

const submit = (h) =>
  adapter.submit({
    caseId: 'case-1', matter: FOOD_PERMIT, idempotencyKey: 'case-1:food_permit', payload: PERMIT,
    callbackUrl: CALLBACK, materials: h.materials(),
  });

const open = (received, status) =>
  Exchange.post('/v2/files')
    .header('Authorization', 'Bearer t-1')
    .bodyJson((o) => {
      assert.equal(o.requestId, 'case-1:food_permit');
      assert.equal(o.code, 'food-safety-rules');
      assert.equal(o.size, RULES.length);
      assert.equal(o.sm3, sm3Hex(RULES));
      assert.equal(o.chunkSize, MIB);
    })
    .respondJson(201, { fileId: 'F-7', chunkSize: MIB, chunks: 3, received, status });

const chunk = (n, bytes) => {
  const part = bytes.subarray(n * MIB, Math.min((n + 1) * MIB, bytes.length));
  return new Exchange('PUT', `/v2/files/F-7/chunks/${n}`)
    .header('Authorization', 'Bearer t-1')
    .header('X-Chunk-SM3', sm3Hex(part))
    .streams('food-safety-rules')
    .body(part)
    .respondJson(200, { fileId: 'F-7', chunk: n });
};

const complete = (bytes) => {
  const whole = { sm3: sm3Hex(bytes), size: bytes.length };
  return Exchange.post('/v2/files/F-7/complete')
    .bodyJson((body) => assert.deepEqual(body, whole))
    .respondJson(200, { fileId: 'F-7', status: 'COMPLETE', ...whole });
};

const application = () =>
  Exchange.post('/api/food-permits')
    .header('Authorization', 'Bearer t-1')
    .bodyJson((a) => {
      assert.equal(a.requestId, 'case-1:food_permit');
      assert.deepEqual(a.materials, [
        { code: 'business-licence', name: '营业执照', licence: LICENCE },
        { code: 'food-safety-rules', name: '食品安全管理制度', fileId: 'F-7' },
      ]);
    })
    .respondJson(202, { applicationNo: 'SPJY1', status: 'ACCEPTED' });

test('files go up in chunks with their SM3 before the application names them', () => {
  const h = withMaterials(RULES)
    .expect(open([], 'UPLOADING'))
    .expect(chunk(0, RULES))
    .expect(chunk(1, RULES))
    .expect(chunk(2, RULES))
    .expect(complete(RULES))
    .expect(application());
  assert.equal(submit(h).reference, 'SPJY1');
  // Read through for the chunks' digests, a host read at a time; the bytes sent were streamed.
  assert.equal(h.reads().reduce((n, r) => n + r.got, 0), RULES.length);
  assert.ok(h.reads().every((r) => r.max <= MIB));
  h.finish();
});

test('an upload cut off resumes where the department stands', () => {
  // After a crash the department has chunks 0 and 2: only chunk 1 goes again.
  let h = withMaterials(RULES)
    .expect(open([0, 2], 'UPLOADING'))
    .expect(chunk(1, RULES))
    .expect(complete(RULES))
    .expect(application());
  submit(h);
  h.finish();
  // The whole file is there already: straight to the application.
  h = withMaterials(RULES).expect(open([0, 1, 2], 'COMPLETE')).expect(application());
  submit(h);
  h.finish();
});

test('a refused chunk stops the submission for the gateway to send again', () => {
  const h = withMaterials(RULES)
    .expect(open([], 'UPLOADING'))
    .expect(
      new Exchange('PUT', '/v2/files/F-7/chunks/0').respondJson(400, {
        error: 'chunk_digest_mismatch', message: '分片0的SM3与内容不符',
      }),
    );
  assert.throws(() => submit(h), (e) => e.payload.tag === 'protocol' && e.payload.val.includes('chunk_digest_mismatch'));
  h.finish();
});

test('a callback is checked by the host key, never by a secret the adapter holds', () => {
  const body = new TextEncoder().encode(JSON.stringify({
    applicationNo: 'SCJG1', requestId: 'k', status: 'APPROVED', uscc: USCC, licenceNo: 'L1',
  }));
  const callback = (signature) => ({ headers: [['X-Signature', signature]], body });
  const h = harness();
  assert.equal(adapter.onCallback(callback(hmacSha256Hex('cb', body))).reference, 'SCJG1');
  assert.throws(
    () => adapter.onCallback(callback(hmacSha256Hex('cb2', body))),
    (e) => e.payload.tag === 'invalid-input' && e.payload.val[0].field === 'X-Signature',
  );
  h.finish();
});
