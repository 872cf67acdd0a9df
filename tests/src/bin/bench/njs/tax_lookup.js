// The tax clearance lookup (清税查询) as a team would write it in nginx + njs without the
// gateway: the bench's fifth row, the peer the gateway's tax adapter is measured against.
//
// For `POST /api/v1/lookups/tax.clearance` `{"taxpayer_id": "…"}` it does what the gateway and
// its tax adapter do on the way: the portal's API key (SHA-256 against the configured hash),
// the lookup's headers (X-Lookup-Purpose, and X-Case-Id or X-Clerk-Id), the query mapped to the
// department's body (`taxpayer_id` → `nsrsbh`), the request signed like the adapter signs
// (X-App-Key, X-Timestamp, X-Nonce, X-Sign-Method, X-Signature = hex HMAC-SHA256(app secret,
// METHOD\nPATH\nTIMESTAMP\nNONCE\nBODY)), sent through a subrequest to an internal location
// whose upstream keeps its connections alive, and the department's answer mapped back to the
// gateway's unified answer and error codes. It records nothing and keeps no audit chain, and
// an X-Case-Id is taken as given: there is no store of cases to check it against.
//
// Configuration comes from nginx.conf: `$portal_key_sha256`, `$tax_app_key`, `$tax_app_secret`
// (js_var). The signed headers go to the internal location in `$tax_timestamp`, `$tax_nonce`
// and `$tax_signature` (js_var: a subrequest reads its parent's), which it sets with
// proxy_set_header.

import crypto from 'crypto';

const LOOKUP = 'tax.clearance';
const DEPARTMENT = 'tax';
const QSCX_PATH = '/api/v1/qscx';
// The internal location that proxies to the department's keep-alive upstream.
const QSCX_LOCATION = '/_tax/qscx';

// The gateway's error body: {"error": {"code", "message", "department"?, "fields"?,
// "request_id"}}.
function fail(r, status, code, message, extra) {
    const error = Object.assign({code: code, message: message}, extra || {});
    error.request_id = r.headersOut['X-Request-Id'].substring(0, 128);
    if (status == 401) {
        r.headersOut['WWW-Authenticate'] = 'Bearer';
    }
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: error}));
}

function invalid(r, fields) {
    fail(r, 422, 'invalid_input', fields.length + ' problem(s) with the input', {fields: fields});
}

function department(r, status, code, message) {
    fail(r, status, code, message, {department: DEPARTMENT});
}

// A header a person wrote (a purpose, a clerk): percent-decoded when it is UTF-8 escaped as
// encodeURIComponent makes it, trimmed; null when absent or blank, false when unreadable.
function headerText(r, name) {
    const raw = r.headersIn[name];
    if (raw === undefined) {
        return null;
    }
    let text = raw;
    if (raw.indexOf('%') >= 0) {
        try {
            text = decodeURIComponent(raw);
        } catch (e) {
            text = raw;
        }
    }
    if (/[\u0000-\u001f\u007f]/.test(text)) {
        return false;
    }
    text = text.trim();
    return text.length ? text : null;
}

// X-Lookup-Purpose (1-200 characters) and the case or clerk served: every problem at once.
function lookupProblems(r) {
    const problems = [];
    const purpose = headerText(r, 'X-Lookup-Purpose');
    const caseId = headerText(r, 'X-Case-Id');
    const clerk = headerText(r, 'X-Clerk-Id');
    const unreadable = (field, value) => {
        if (value === false) {
            problems.push({field: field, code: 'format', message: '请求头无法识别'});
        }
    };
    unreadable('X-Lookup-Purpose', purpose);
    unreadable('X-Case-Id', caseId);
    unreadable('X-Clerk-Id', clerk);
    if (purpose === null) {
        problems.push({field: 'X-Lookup-Purpose', code: 'required', message: '查询公民数据须说明查询事由'});
    } else if (purpose && purpose.length > 200) {
        problems.push({field: 'X-Lookup-Purpose', code: 'length', message: '查询事由不能超过200个字符'});
    }
    if (caseId === null && clerk === null) {
        problems.push({field: 'X-Case-Id', code: 'required',
                       message: '查询须服务于一个办件（X-Case-Id）或窗口工作人员（X-Clerk-Id）'});
    }
    return problems;
}

// The taxpayer id: a unified social credit code or a resident ID number (both 18 characters of
// the credit code's alphabet), upper-cased; a failing check character is the department's call.
function taxpayerId(query) {
    const id = typeof query.taxpayer_id == 'string' ? query.taxpayer_id.trim().toUpperCase() : '';
    if (!id) {
        return {problem: {field: 'taxpayer_id', code: 'required', message: '必填项'}};
    }
    if (!/^[0-9A-HJ-NPQRTUWXY]{18}$/.test(id)) {
        return {problem: {field: 'taxpayer_id', code: 'format',
                          message: '纳税人识别号应为统一社会信用代码或居民身份号码'}};
    }
    return {id: id};
}

function hex(bytes) {
    let out = '';
    for (let i = 0; i < bytes.length; i++) {
        out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    }
    return out;
}

// Sign the department request into the variables the internal location sends as headers.
function sign(r, body) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = hex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
    const canonical = 'POST\n' + QSCX_PATH + '\n' + timestamp + '\n' + nonce + '\n' + body;
    r.variables.tax_timestamp = timestamp;
    r.variables.tax_nonce = nonce;
    r.variables.tax_signature = crypto.createHmac('sha256', r.variables.tax_app_secret)
        .update(canonical).digest('hex');
}

function text(data, field) {
    const value = data[field];
    return typeof value == 'string' && value.length ? value : null;
}

// The department's answer in the gateway's terms, as the tax adapter reads it: its envelope
// `{"code", "msg", "data"}`, 0000 the data, 2002 not found, another code a refusal.
function answer(r, reply) {
    const status = reply.status;
    if (status == 504) {
        return department(r, 504, 'department_timeout', 'department tax timed out');
    }
    if (status >= 500) {
        return department(r, 503, 'department_unavailable',
                          'department tax unavailable: department answered HTTP ' + status);
    }
    let envelope;
    try {
        envelope = JSON.parse(reply.responseText);
    } catch (e) {
        envelope = null;
    }
    if (!envelope || typeof envelope != 'object' || Array.isArray(envelope)
        || typeof envelope.code != 'string' || !envelope.code) {
        return department(r, 502, 'department_protocol_error',
                          'department tax answered unreadably: department answered HTTP ' + status
                          + ' with a body that is not its JSON');
    }
    const code = envelope.code;
    const msg = typeof envelope.msg == 'string' ? envelope.msg : '';
    if (status == 401) {
        // A repeated nonce (4013) or a changed upload (4014) is cured by another attempt;
        // a bad signature or timestamp needs an operator.
        if (code == '4013' || code == '4014') {
            return department(r, 503, 'department_unavailable',
                              'department tax unavailable: department refused (' + code + ' ' + msg + ')');
        }
        return department(r, 502, 'adapter_failed',
                          'adapter for tax failed: department refused the request signature ('
                          + code + ' ' + msg + ')');
    }
    if (status != 200) {
        return department(r, 502, 'department_protocol_error',
                          'department tax answered unreadably: department answered HTTP ' + status
                          + ' (' + code + ' ' + msg + ')');
    }
    if (code == '2002') {
        return department(r, 404, 'not_found', 'not_found: ' + msg);
    }
    if (code != '0000') {
        return department(r, 422, 'rejected', code + ': ' + msg);
    }
    const data = envelope.data && typeof envelope.data == 'object' ? envelope.data : {};
    const result = {};
    const fields = [['taxpayer_id', 'nsrsbh'], ['name', 'nsrmc'], ['cleared', 'qszt'], ['arrears', 'qjje']];
    for (let i = 0; i < fields.length; i++) {
        const unified = fields[i][0];
        const theirs = fields[i][1];
        const value = text(data, theirs);
        if (value === null) {
            return department(r, 502, 'department_protocol_error',
                              'department tax answered unreadably: department answer has no `' + theirs + '`');
        }
        result[unified] = value;
    }
    if (result.cleared != 'Y' && result.cleared != 'N') {
        return department(r, 502, 'department_protocol_error',
                          'department tax answered unreadably: unknown clearance state qszt=' + result.cleared);
    }
    result.cleared = result.cleared == 'Y';
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify({
        lookup: LOOKUP,
        department: DEPARTMENT,
        result: {arrears: result.arrears, cleared: result.cleared, name: result.name,
                 taxpayer_id: result.taxpayer_id},
    }));
}

async function lookup(r) {
    // As the gateway: the caller's request id, or one made here, echoed on every answer.
    r.headersOut['X-Request-Id'] = r.headersIn['X-Request-Id'] || r.variables.request_id;
    const key = (r.headersIn['X-Api-Key'] || '').trim();
    if (!key) {
        return fail(r, 401, 'unauthorized', 'unauthorized: no credential: send X-Api-Key or a bearer token');
    }
    const hash = crypto.createHash('sha256').update(key).digest('hex');
    if (hash != r.variables.portal_key_sha256) {
        return fail(r, 401, 'unauthorized', 'unauthorized: the API key is not valid');
    }
    if (r.method != 'POST') {
        return fail(r, 405, 'method_not_allowed', 'POST only');
    }
    let query;
    try {
        query = JSON.parse(r.requestText || '');
    } catch (e) {
        return fail(r, 400, 'malformed_json', 'malformed JSON: ' + e.message);
    }
    if (!query || typeof query != 'object' || Array.isArray(query)) {
        return fail(r, 400, 'malformed_json', 'malformed JSON: the body is not a JSON object');
    }
    // As the gateway: the headers' problems first, then the query's (the adapter's check).
    const problems = lookupProblems(r);
    if (problems.length) {
        return invalid(r, problems);
    }
    const taxpayer = taxpayerId(query);
    if (taxpayer.problem) {
        return invalid(r, [taxpayer.problem]);
    }
    const body = JSON.stringify({nsrsbh: taxpayer.id});
    sign(r, body);
    let reply;
    try {
        reply = await r.subrequest(QSCX_LOCATION, {method: 'POST', body: body});
    } catch (e) {
        return department(r, 503, 'department_unavailable', 'department tax unavailable: ' + e.message);
    }
    answer(r, reply);
}

export default {lookup};
