/**
 * Adapter for market regulation (市场监管), in JavaScript: JSON REST behind OAuth2 client
 * credentials. The same department, matters and lookup as the Rust adapter
 * (plugins/market-regulation), written with `sdk-js` and built by `cargo xtask adapters` with
 * componentize-js into `market_regulation_js_adapter.wasm`.
 *
 * Serves `market-regulation.business-licence` (营业执照设立登记, `POST /api/licences`, decided
 * later and reported by a signed callback, or polled), `market-regulation.food-permit`
 * (食品经营许可, `POST /api/food-permits`, polled) and the lookup `market-regulation.enterprise`
 * (`GET /api/enterprises/{uscc}`). Materials go first, uploaded in chunks (uploads.js), the host
 * streaming each chunk from its store; 补正 and 撤回 as lifecycle.js says.
 *
 * Settings: `client-id`, `client-secret` (token grant). Keys the host holds: `callback-secret`
 * (`hmac`: the HMAC-SHA256 key of the callbacks' `X-Signature`; the adapter asks the host to check
 * a signature and never sees the secret). The access token is cached under `token` for its lifetime less
 * 30 s; a 401 drops it, fetches a new one and retries the call once.
 *
 * Each export is a sequence of calls through the host; the protocol is pure functions in
 * protocol.js, uploads.js and lifecycle.js.
 */

import {
  AdapterFailure, CONTRACT_VERSION, Request, cache, chunkSm3Hex, chunks, log, part, requireSetting,
  verifyMacHex,
} from '../../sdk-js/gov-adapter/index.js';
import * as protocol from './protocol.js';
import * as uploads from './uploads.js';
import * as lifecycle from './lifecycle.js';

const { BUSINESS_LICENCE, FOOD_PERMIT, ENTERPRISE, TOKEN_CACHE_KEY } = protocol;

/** The version this adapter reports; the Rust one is 1.0.0. */
const ADAPTER_VERSION = '1.0.0-js';

const invalid = (problems) => AdapterFailure.invalidInput(problems);

/** A fresh token from the department, cached for its lifetime less the margin. */
function fetchToken() {
  const form = protocol.tokenForm(requireSetting('client-id'), requireSetting('client-secret'));
  const response = Request.post(protocol.TOKEN_PATH)
    .header('Content-Type', 'application/x-www-form-urlencoded')
    .bytes(form)
    .send();
  const token = protocol.readToken(response.status, response.body);
  cache.set(TOKEN_CACHE_KEY, token.accessToken, token.ttlMs);
  return token.accessToken;
}

function cachedOrFetchedToken() {
  const cached = cache.getString(TOKEN_CACHE_KEY);
  return cached ? cached : fetchToken();
}

/**
 * Send an API request with the bearer token; on 401 drop the token, fetch a new one and retry
 * once. A second 401 is left to the answer readers (a `protocol` error).
 */
function call(build) {
  const token = cachedOrFetchedToken();
  const response = build().header('Authorization', `Bearer ${token}`).send();
  if (response.status !== 401) return response;
  log.info('access token refused, fetching a new one');
  cache.delete(TOKEN_CACHE_KEY);
  const renewed = fetchToken();
  return build().header('Authorization', `Bearer ${renewed}`).send();
}

/** Upload one file in chunks; the department's id of it (undefined for a material not a file). */
function upload(requestId, material) {
  if (material.source.tag !== 'file') return undefined;
  const file = material.source.val;
  const code = material.code;
  const open = uploads.openBody(requestId, material, file);
  const opened = (() => {
    const r = call(() => Request.post(uploads.FILES_PATH).json(open));
    return uploads.readOpened(r.status, r.body, file.size);
  })();
  if (!opened.complete) {
    for (const chunk of chunks(file.size, opened.chunkSize)) {
      if (opened.received.has(chunk.index)) continue;
      // Read through once for the digest; the host streams the bytes again to send them.
      const sm3 = chunkSm3Hex(code, chunk);
      const path = uploads.chunkPath(opened.fileId, chunk.index);
      const r = call(() =>
        Request.put(path)
          .header('Content-Type', 'application/octet-stream')
          .header(uploads.CHUNK_SM3_HEADER, sm3)
          .parts([part.material(code, { offset: chunk.offset, length: chunk.length })]),
      );
      uploads.readChunk(r.status, r.body);
    }
    const done = uploads.completeBody(file);
    const r = call(() => Request.post(uploads.completePath(opened.fileId)).json(done));
    uploads.readCompleted(r.status, r.body, file);
  }
  log.info(`material ${code} uploaded, fileId ${opened.fileId}`);
  return opened.fileId;
}

/** Upload `materials`' files under `requestId` and name them all in `body`. */
function attach(body, requestId, materials) {
  if (materials.length === 0) return;
  const uploaded = new Map();
  for (const material of materials) {
    const fileId = upload(requestId, material);
    if (fileId !== undefined) uploaded.set(material.code, fileId);
  }
  body.materials = uploads.materialsField(materials, uploaded);
}

export function describe() {
  return {
    department: 'market-regulation',
    contractVersion: CONTRACT_VERSION,
    adapterVersion: ADAPTER_VERSION,
    matters: [
      { code: BUSINESS_LICENCE, name: '营业执照设立登记', inputSchema: JSON.stringify(protocol.licenceSchema()) },
      { code: FOOD_PERMIT, name: '食品经营许可', inputSchema: JSON.stringify(protocol.foodPermitSchema()) },
    ],
    lookups: [
      {
        name: ENTERPRISE,
        description: '企业登记信息查询：按统一社会信用代码查询企业名称、住所、法定代表人、注册资本、登记状态',
        inputSchema: JSON.stringify(protocol.enterpriseSchema()),
      },
    ],
  };
}

export function validate(matter, payload) {
  return protocol.validate(matter, payload);
}

export function submit(submission) {
  const key = submission.idempotencyKey;
  switch (submission.matter) {
    case BUSINESS_LICENCE: {
      const licence = protocol.licence(submission.payload);
      if (licence.problems) throw invalid(licence.problems);
      const body = protocol.licenceBody(licence.value, key, submission.callbackUrl);
      attach(body, key, submission.materials);
      const r = call(() => Request.post(protocol.LICENCES_PATH).json(body));
      const receipt = protocol.readSubmitted(r.status, r.body);
      log.info(`licence application accepted, applicationNo ${receipt.reference}`);
      return receipt;
    }
    case FOOD_PERMIT: {
      const permit = protocol.foodPermit(submission.payload);
      if (permit.problems) throw invalid(permit.problems);
      const body = protocol.foodPermitBody(permit.value, key);
      attach(body, key, submission.materials);
      const r = call(() => Request.post(protocol.FOOD_PERMITS_PATH).json(body));
      const receipt = protocol.readPermitSubmitted(r.status, r.body);
      log.info(`food permit application accepted, applicationNo ${receipt.reference}`);
      return receipt;
    }
    default:
      throw invalid([protocol.unknownMatter(submission.matter)]);
  }
}

export function status(matter, reference) {
  switch (matter) {
    case BUSINESS_LICENCE: {
      const r = call(() => Request.get(protocol.licencePath(reference)));
      return protocol.readStatus(r.status, r.body);
    }
    case FOOD_PERMIT: {
      const r = call(() => Request.get(protocol.foodPermitPath(reference)));
      return protocol.readPermitStatus(r.status, r.body);
    }
    default:
      throw invalid([protocol.unknownMatter(matter)]);
  }
}

export function lookup(name, query) {
  if (name !== ENTERPRISE) {
    throw invalid([{ field: '', code: 'unknown_lookup', message: `市场监管部门不提供查询「${name}」` }]);
  }
  const creditCode = protocol.enterpriseQuery(query);
  if (creditCode.problems) throw invalid(creditCode.problems);
  const r = call(() => Request.get(protocol.enterprisePath(creditCode.value)));
  return JSON.stringify(protocol.readEnterprise(r.status, r.body));
}

export function onCallback(request) {
  const report = protocol.readCallback(request.headers, request.body, (signature) =>
    verifyMacHex(protocol.CALLBACK_KEY, request.body, signature));
  log.info(`licence callback for applicationNo ${report.reference}`);
  return report;
}

export function supplement(s) {
  if (s.matter === FOOD_PERMIT) {
    throw AdapterFailure.rejected('not_returned', '市场监管部门不退回食品经营许可申请，无需补正');
  }
  if (s.matter !== BUSINESS_LICENCE) throw invalid([protocol.unknownMatter(s.matter)]);
  const requestId = s.idempotencyKey;
  const body = lifecycle.supplementBody(requestId, s.payload);
  if (body.problems) throw invalid(body.problems);
  attach(body.value, requestId, s.materials);
  const path = lifecycle.supplementsPath(protocol.licencePath(s.reference));
  const r = call(() => Request.post(path).json(body.value));
  const receipt = protocol.readSubmitted(r.status, r.body);
  log.info(`supplement accepted, applicationNo ${receipt.reference}`);
  return receipt;
}

export function withdraw(w) {
  // Without an application number the department never took it: nothing to withdraw.
  const no = w.reference;
  if (no === undefined || no === null || no === '') {
    return { reference: '', state: 'withdrawn', message: '市场监管部门尚未受理，无需撤回', outputs: '{}', requested: undefined };
  }
  const body = lifecycle.withdrawalBody(w.idempotencyKey, w.reason);
  let path;
  let read;
  if (w.matter === BUSINESS_LICENCE) {
    path = lifecycle.withdrawalPath(protocol.licencePath(no));
    read = protocol.readStatus;
  } else if (w.matter === FOOD_PERMIT) {
    path = lifecycle.withdrawalPath(protocol.foodPermitPath(no));
    read = protocol.readPermitStatus;
  } else {
    throw invalid([protocol.unknownMatter(w.matter)]);
  }
  const r = call(() => Request.post(path).json(body));
  const report = read(r.status, r.body);
  log.info(`withdrawal answered, applicationNo ${report.reference}: ${report.state}`);
  return report;
}
