/**
 * The market-regulation system's protocol as pure functions: payload checks, OAuth2 token
 * requests and answers, licence and food permit applications, callbacks and enterprise lookups.
 * Nothing here calls the host. The same protocol as the Rust adapter (plugins/market-regulation),
 * function by function.
 */

import {
  AdapterFailure, Problems, creditCodeProblem, parsePayload, percentEncode, present,
} from '../../sdk-js/gov-adapter/index.js';
import { requested } from './lifecycle.js';

/** 营业执照设立登记. */
export const BUSINESS_LICENCE = 'market-regulation.business-licence';
/** 食品经营许可. */
export const FOOD_PERMIT = 'market-regulation.food-permit';
/** 企业登记信息查询. */
export const ENTERPRISE = 'market-regulation.enterprise';

export const TOKEN_PATH = '/oauth/token';
export const LICENCES_PATH = '/api/licences';
export const FOOD_PERMITS_PATH = '/api/food-permits';
/** Cache key of the access token. */
export const TOKEN_CACHE_KEY = 'token';
/** The host key (`hmac`) that checks the department's callback signatures. */
export const CALLBACK_KEY = 'callback-secret';
/** The token is dropped from the cache this long before the department expires it. */
export const TOKEN_MARGIN_SECS = 30;

const PERSON = { name: 'string', id_number: 'string' };
const LICENCE_SHAPE = {
  enterprise_name: 'string',
  address: 'string',
  legal_representative: PERSON,
  registered_capital: 'number',
  business_scope: 'string',
};
const PERMIT_SHAPE = {
  credit_code: 'string',
  enterprise_name: 'string',
  address: 'string',
  legal_representative: PERSON,
  business_items: ['string'],
  premises_area: 'number',
};

const person = (p) => [present(p?.name), present(p?.id_number)];
const positive = (v) => Number.isFinite(v) && v > 0;

function checkPerson(problems, p) {
  const [name, idNumber] = person(p);
  problems.required('legal_representative.name', name);
  problems.required('legal_representative.id_number', idNumber);
  problems.residentId('legal_representative.id_number', idNumber);
}

/** Every problem the department would have with a licence application. */
export function checkLicence(l) {
  const p = new Problems();
  p.required('enterprise_name', present(l.enterprise_name));
  p.required('address', present(l.address));
  checkPerson(p, l.legal_representative);
  if (l.registered_capital === undefined || l.registered_capital === null) {
    p.add('registered_capital', 'required', '必填项');
  } else if (!positive(l.registered_capital)) {
    p.add('registered_capital', 'range', '注册资本须大于0万元');
  }
  p.required('business_scope', present(l.business_scope));
  return p.list();
}

/** The business items, trimmed. */
const items = (f) => (f.business_items ?? []).map((i) => i.trim());

/** Every problem the department would have with a food permit application. */
export function checkFoodPermit(f) {
  const p = new Problems();
  const creditCode = present(f.credit_code);
  p.required('credit_code', creditCode);
  // The department refuses any code failing GB 32100, pilot codes included.
  p.creditCode('credit_code', creditCode);
  p.required('enterprise_name', present(f.enterprise_name));
  p.required('address', present(f.address));
  checkPerson(p, f.legal_representative);
  if (f.business_items === undefined || f.business_items === null) {
    p.add('business_items', 'required', '必填项');
  } else if (f.business_items.length === 0) {
    p.add('business_items', 'required', '至少填写一项经营项目');
  } else {
    items(f).forEach((item, i) => p.required(`business_items.${i}`, item));
  }
  if (f.premises_area === undefined || f.premises_area === null) {
    p.add('premises_area', 'required', '必填项');
  } else if (!positive(f.premises_area)) {
    p.add('premises_area', 'range', '经营场所面积须大于0平方米');
  }
  return p.list();
}

function parseChecked(payload, shape, check) {
  const parsed = parsePayload(payload, shape);
  if (parsed.problems) return parsed;
  const problems = check(parsed.value);
  return problems.length > 0 ? { problems } : { value: parsed.value };
}

/** Parse and check a licence payload: `{value}` or `{problems}`. */
export const licence = (payload) => parseChecked(payload, LICENCE_SHAPE, checkLicence);

/** Parse and check a food permit payload: `{value}` or `{problems}`. */
export const foodPermit = (payload) => parseChecked(payload, PERMIT_SHAPE, checkFoodPermit);

/** `validate` for any matter name. */
export function validate(matter, payload) {
  switch (matter) {
    case BUSINESS_LICENCE:
      return licence(payload).problems ?? [];
    case FOOD_PERMIT:
      return foodPermit(payload).problems ?? [];
    default:
      return [unknownMatter(matter)];
  }
}

/** The one problem reported for a matter this adapter does not serve. */
export function unknownMatter(matter) {
  return { field: '', code: 'unknown_matter', message: `市场监管部门不办理事项「${matter}」` };
}

/** The `POST /api/licences` body; `requestId` is the submission's idempotency key. */
export function licenceBody(l, requestId, callbackUrl) {
  const [name, idNumber] = person(l.legal_representative);
  return {
    requestId,
    name: present(l.enterprise_name) ?? '',
    address: present(l.address) ?? '',
    legalRepresentative: { name: name ?? '', idNumber: idNumber ?? '' },
    registeredCapital: l.registered_capital ?? 0,
    businessScope: present(l.business_scope) ?? '',
    callbackUrl,
  };
}

/** The `POST /api/food-permits` body; `requestId` is the submission's idempotency key. */
export function foodPermitBody(f, requestId) {
  const [name, idNumber] = person(f.legal_representative);
  return {
    requestId,
    uscc: present(f.credit_code) ?? '',
    name: present(f.enterprise_name) ?? '',
    address: present(f.address) ?? '',
    legalRepresentative: { name: name ?? '', idNumber: idNumber ?? '' },
    businessItems: items(f),
    premisesArea: f.premises_area ?? 0,
  };
}

/**
 * The credit code of an enterprise query, upper-cased: `{value}` or `{problems}`. A code that
 * only fails its check character is passed on: early pilot codes do, and the department knows
 * its own register.
 */
export function enterpriseQuery(query) {
  const parsed = parsePayload(query, { credit_code: 'string' });
  if (parsed.problems) return parsed;
  const code = present(parsed.value.credit_code)?.replace(/[a-z]/g, (c) => c.toUpperCase());
  if (code === undefined) {
    return { problems: [{ field: 'credit_code', code: 'required', message: '必填项' }] };
  }
  const wrong = creditCodeProblem(code);
  if (wrong && wrong.code !== 'checksum') {
    return { problems: [{ field: 'credit_code', code: wrong.code, message: wrong.message }] };
  }
  return { value: code };
}

export const enterprisePath = (creditCode) => `/api/enterprises/${percentEncode(creditCode)}`;
export const licencePath = (no) => `${LICENCES_PATH}/${percentEncode(no)}`;
export const foodPermitPath = (no) => `${FOOD_PERMITS_PATH}/${percentEncode(no)}`;

/** The `application/x-www-form-urlencoded` body of the client-credentials grant. */
export function tokenForm(clientId, clientSecret) {
  const enc = (v) => percentEncode(v).replaceAll('%20', '+');
  return `grant_type=client_credentials&client_id=${enc(clientId)}&client_secret=${enc(clientSecret)}`;
}

/** Cache lifetime of a token valid for `expiresIn` seconds: 30 s less, at least 1 s. */
export function tokenTtlMs(expiresIn) {
  const secs = Math.max(expiresIn - TOKEN_MARGIN_SECS, 1);
  return Math.min(secs * 1000, 0xffffffff);
}

function jsonOrUndefined(body) {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return undefined;
  }
}

/** `{error, message}` of a refusal, when the body is one. */
// A blank `error` is no code: the answer is read as if it had none (`conflict`, `invalid` …).
function errorBody(body) {
  const e = jsonOrUndefined(body);
  return e && typeof e === 'object' && typeof e.error === 'string' && e.error !== ''
    ? { error: e.error, message: typeof e.message === 'string' ? e.message : '' }
    : undefined;
}

const unavailable = (status) => AdapterFailure.unavailable(`department answered HTTP ${status}`);

/**
 * Read the token endpoint's answer: `{accessToken, ttlMs}`. Wrong client credentials (401
 * `invalid_client`) are a configuration the adapter cannot fix and retrying will not cure:
 * `internal`, naming the settings to check.
 */
export function readToken(status, body) {
  if (status >= 500) throw unavailable(status);
  if (status >= 200 && status < 300) {
    const answer = jsonOrUndefined(body);
    if (!answer || typeof answer.access_token !== 'string') {
      throw AdapterFailure.protocol('unreadable token answer');
    }
    if (answer.access_token === '') {
      throw AdapterFailure.protocol('token answer has an empty access_token');
    }
    const expiresIn = Number.isInteger(answer.expires_in) && answer.expires_in >= 0 ? answer.expires_in : 0;
    return { accessToken: answer.access_token, ttlMs: tokenTtlMs(expiresIn) };
  }
  if (status === 400 || status === 401) {
    const error = errorBody(body)?.error ?? `HTTP ${status}`;
    throw AdapterFailure.internal(
      `department refused the client credentials (${error}): check client-id and client-secret`,
    );
  }
  throw AdapterFailure.protocol(`token endpoint answered HTTP ${status}`);
}

/**
 * The error of an API answer that is not 2xx (401 is handled by the caller's retry): 404
 * `not_found`, 409 refusals (`name_taken` …), 422 invalid fields, 5xx unavailable.
 */
export function apiError(status, body) {
  const parsed = errorBody(body);
  const message = parsed?.message ?? '';
  if (status >= 500) return unavailable(status);
  switch (status) {
    case 401:
      return AdapterFailure.protocol(
        `department refused a freshly issued token (${parsed?.error ?? 'HTTP 401'})`,
      );
    case 404:
      return AdapterFailure.rejected('not_found', message || '未查询到');
    case 409:
      return AdapterFailure.rejected(parsed?.error ?? 'conflict', message);
    case 422:
      return AdapterFailure.invalidInput([
        { field: '', code: parsed?.error ?? 'invalid', message: message || '市场监管部门认为申请字段有误' },
      ]);
    default:
      // 400: the request was wrong (an application naming a file not uploaded …).
      return AdapterFailure.protocol(
        parsed
          ? `department answered HTTP ${status} ${parsed.error} ${parsed.message}`
          : `department answered HTTP ${status}`,
      );
  }
}

function jsonOf(status, body) {
  if (status < 200 || status >= 300) throw apiError(status, body);
  const data = jsonOrUndefined(body);
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw AdapterFailure.protocol(
      `department answered HTTP ${status} with a body that is not a JSON object`,
    );
  }
  return data;
}

function text(data, field) {
  const value = data[field];
  if (typeof value !== 'string' || value === '') {
    throw AdapterFailure.protocol(`department answer has no \`${field}\``);
  }
  return value;
}

const STATES = {
  ACCEPTED: 'accepted',
  PROCESSING: 'processing',
  APPROVED: 'approved',
  REJECTED: 'rejected',
  RETURNED: 'returned',
  WITHDRAWN: 'withdrawn',
};

/** The department's application status as a step state. */
export function stateOf(status) {
  const state = Object.hasOwn(STATES, status) ? STATES[status] : undefined;
  if (!state) throw AdapterFailure.protocol(`unknown application status ${status}`);
  return state;
}

function reportBase(data) {
  return {
    reference: text(data, 'applicationNo'),
    state: stateOf(text(data, 'status')),
    message: typeof data.message === 'string' ? data.message : undefined,
    outputs: '{}',
    requested: undefined,
  };
}

/**
 * A status report from an application document (`GET /api/licences/{no}` or a callback). Once
 * approved, the outputs carry the issued credit code and licence number.
 */
export function reportOf(data) {
  const report = reportBase(data);
  if (report.state === 'approved') {
    const uscc = text(data, 'uscc');
    const wrong = creditCodeProblem(uscc);
    if (wrong) {
      throw AdapterFailure.protocol(`issued credit code is not valid: ${wrong.message} (${wrong.code})`);
    }
    const outputs = { credit_code: uscc, licence_no: text(data, 'licenceNo') };
    if (typeof data.name === 'string') outputs.enterprise_name = data.name;
    report.outputs = JSON.stringify(outputs);
  }
  if (report.state === 'returned') report.requested = requested(data);
  return report;
}

/** A status report from a food permit document; approved, it carries the permit number. */
export function permitReportOf(data) {
  const report = reportBase(data);
  if (report.state === 'approved') {
    const permitNo = text(data, 'permitNo');
    if (!/^JY[0-9]{14}$/.test(permitNo)) {
      throw AdapterFailure.protocol(`issued food permit number is not JY and 14 digits: ${permitNo}`);
    }
    report.outputs = JSON.stringify({ permit_no: permitNo });
  }
  return report;
}

/** The receipt of `POST /api/licences` (202 `ACCEPTED`). */
export const readSubmitted = (status, body) => reportOf(jsonOf(status, body));
/** The report of `GET /api/licences/{applicationNo}`. */
export const readStatus = (status, body) => reportOf(jsonOf(status, body));
/** The receipt of `POST /api/food-permits`. */
export const readPermitSubmitted = (status, body) => permitReportOf(jsonOf(status, body));
/** The report of `GET /api/food-permits/{applicationNo}`. */
export const readPermitStatus = (status, body) => permitReportOf(jsonOf(status, body));

/**
 * Read a callback: its `X-Signature` must be the hex HMAC-SHA256 of the raw body under the
 * callback secret — `genuine(signature)` says whether it is (the adapter asks the host, which
 * holds the secret) — else it is `invalid-input` on `X-Signature`.
 */
export function readCallback(headers, body, genuine) {
  const signature = headers.find(([name]) => name.toLowerCase() === 'x-signature')?.[1]?.trim();
  if (signature === undefined || !genuine(signature)) {
    throw AdapterFailure.invalidInput([
      {
        field: 'X-Signature',
        code: 'signature',
        message: signature === undefined ? '回调缺少签名' : '回调签名不正确',
      },
    ]);
  }
  const data = jsonOrUndefined(body);
  if (data === undefined) throw AdapterFailure.protocol('callback body is not JSON');
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw AdapterFailure.protocol('department answer has no `applicationNo`');
  }
  return reportOf(data);
}

/** The unified answer of `market-regulation.enterprise`. */
export function readEnterprise(status, body) {
  const data = jsonOf(status, body);
  const field = (name) => (data[name] === undefined ? null : data[name]);
  return {
    credit_code: text(data, 'uscc'),
    name: text(data, 'name'),
    address: field('address'),
    legal_representative: field('legalRepresentative'),
    registered_capital: field('registeredCapital'),
    status: field('status'),
  };
}

const idNumberSchema = { type: 'string', title: '居民身份号码', minLength: 1, format: 'resident-id' };

/** Input schema of `market-regulation.business-licence`. */
export const licenceSchema = () => ({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: '营业执照设立登记',
  type: 'object',
  required: ['enterprise_name', 'address', 'legal_representative', 'registered_capital', 'business_scope'],
  properties: {
    enterprise_name: { type: 'string', title: '企业名称', minLength: 1 },
    address: { type: 'string', title: '住所', minLength: 1 },
    legal_representative: {
      type: 'object',
      title: '法定代表人',
      required: ['name', 'id_number'],
      properties: { name: { type: 'string', title: '姓名', minLength: 1 }, id_number: idNumberSchema },
    },
    registered_capital: { type: 'number', title: '注册资本（万元）' },
    business_scope: { type: 'string', title: '经营范围', minLength: 1 },
  },
});

/** Input schema of `market-regulation.food-permit`. */
export const foodPermitSchema = () => ({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: '食品经营许可',
  type: 'object',
  required: ['credit_code', 'enterprise_name', 'address', 'legal_representative', 'business_items', 'premises_area'],
  properties: {
    credit_code: { type: 'string', title: '统一社会信用代码', minLength: 1, format: 'credit-code' },
    enterprise_name: { type: 'string', title: '经营者名称', minLength: 1 },
    address: { type: 'string', title: '经营场所', minLength: 1 },
    legal_representative: {
      type: 'object',
      title: '法定代表人（负责人）',
      required: ['name', 'id_number'],
      properties: { name: { type: 'string', title: '姓名', minLength: 1 }, id_number: idNumberSchema },
    },
    business_items: {
      type: 'array',
      title: '经营项目',
      items: { type: 'string', title: '经营项目（如 热食类食品制售）', minLength: 1 },
      minItems: 1,
    },
    premises_area: { type: 'number', title: '经营场所面积（平方米）' },
  },
});

/** Query schema of `market-regulation.enterprise`. */
export const enterpriseSchema = () => ({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: '企业登记信息查询',
  type: 'object',
  required: ['credit_code'],
  properties: { credit_code: { type: 'string', title: '统一社会信用代码', minLength: 1 } },
});
