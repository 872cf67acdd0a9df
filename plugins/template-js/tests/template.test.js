// The template adapter against scripted exchanges: copy and change with the adapter.
// Run from the repository root: node --import ./sdk-js/testing/register.js --test plugins/template-js/tests
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Exchange, Harness } from '../../../sdk-js/testing/harness.js';
import * as adapter from '../app.js';

const PAYLOAD = { credit_code: '91350100M000100Y43', enterprise_name: '福州演示科技有限公司' };
const submission = (payload = PAYLOAD) => ({
  caseId: 'case-1', matter: adapter.MATTER, idempotencyKey: 'key-1', payload: JSON.stringify(payload),
  callbackUrl: '', materials: [],
});

test('submit sends the request id and reads the number', () => {
  const h = new Harness().expect(
    Exchange.post('/api/registrations')
      .header('content-type', 'application/json')
      .bodyJson((b) => assert.equal(b.requestId, 'key-1'))
      .respondJson(200, { number: 'EX-1' }),
  );
  assert.equal(adapter.submit(submission()).reference, 'EX-1');
  h.finish();
});

test('a bad credit code is told in Chinese and nothing is sent', () => {
  const h = new Harness();
  assert.throws(
    () => adapter.submit(submission({ ...PAYLOAD, credit_code: '91350100M000100Y44' })),
    (e) => e.payload.tag === 'invalid-input' && e.payload.val[0].message === '统一社会信用代码校验位错误',
  );
  assert.equal(h.sent.length, 0);
  h.finish();
});
