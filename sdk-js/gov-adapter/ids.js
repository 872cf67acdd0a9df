/**
 * National identifiers and their check algorithms, each problem in Chinese: the same rules and
 * messages as the Rust sdk's `ids` (and the gateway's pre-review), so a number is judged the same
 * way whichever language its adapter is written in.
 */

const CREDIT_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const RESIDENT_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECK = '10X98765432';

/** The check character of a unified social credit code from its first 17 characters. */
export function creditCodeCheckChar(first17) {
  const chars = [...first17];
  if (chars.length !== 17 || chars.some((c) => !CREDIT_ALPHABET.includes(c))) return undefined;
  const sum = chars.reduce((s, c, i) => s + CREDIT_ALPHABET.indexOf(c) * CREDIT_WEIGHTS[i], 0);
  return CREDIT_ALPHABET[(31 - (sum % 31)) % 31];
}

/**
 * What is wrong with a unified social credit code (GB 32100-2015) as `{code, message}`
 * (`length`, `format`, `checksum`), or undefined when it is well formed. Some early pilot codes
 * fail only the checksum and are still legal: callers decide what a `checksum` problem means.
 */
export function creditCodeProblem(value) {
  const chars = [...value];
  if (chars.length !== 18) {
    return { code: 'length', message: `统一社会信用代码应为18位，实为${chars.length}位` };
  }
  const bad = chars.find((c) => !CREDIT_ALPHABET.includes(c));
  if (bad !== undefined) {
    return { code: 'format', message: `统一社会信用代码含有不允许的字符「${bad}」` };
  }
  if (creditCodeCheckChar(value.slice(0, 17)) !== chars[17]) {
    return { code: 'checksum', message: '统一社会信用代码校验位错误' };
  }
  return undefined;
}

function dateExists(year, month, day) {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return days !== undefined && day >= 1 && day <= days;
}

/** Today in Beijing time as `YYYYMMDD`, a number. */
function todayInBeijing(now = Date.now()) {
  const d = new Date(now + 8 * 3600 * 1000);
  return d.getUTCFullYear() * 10000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate();
}

/**
 * What is wrong with an 18-character resident identity number (GB 11643-1999) as `{code,
 * message}` (`length`, `format`, `date`, `checksum`), or undefined. Unknown region codes are
 * accepted: codes change over the years, issued numbers never do.
 */
export function residentIdProblem(value, now = Date.now()) {
  const chars = [...value];
  if (chars.length !== 18) {
    return { code: 'length', message: `居民身份号码应为18位，实为${chars.length}位` };
  }
  if (!/^[0-9]{17}[0-9X]$/.test(value)) {
    return { code: 'format', message: '居民身份号码前17位应为数字，末位为数字或大写X' };
  }
  const year = Number(value.slice(6, 10));
  const month = Number(value.slice(10, 12));
  const day = Number(value.slice(12, 14));
  if (!dateExists(year, month, day)) {
    return { code: 'date', message: '居民身份号码中的出生日期不存在' };
  }
  if (year * 10000 + month * 100 + day > todayInBeijing(now) || year < 1900) {
    return { code: 'date', message: '居民身份号码中的出生日期不在合理范围内' };
  }
  const sum = RESIDENT_WEIGHTS.reduce((s, w, i) => s + Number(value[i]) * w, 0);
  if (RESIDENT_CHECK[sum % 11] !== value[17]) {
    return { code: 'checksum', message: '居民身份号码校验位错误' };
  }
  return undefined;
}
