// The fake of gov:adapter/crypto: every call goes to the harness of the test running.
import { active } from '../harness.js';
export const sign = (...args) => active().imports.crypto.sign(...args);
export const verify = (...args) => active().imports.crypto.verify(...args);
export const mac = (...args) => active().imports.crypto.mac(...args);
export const sm3 = (...args) => active().imports.crypto.sm3(...args);
export const sm4Encrypt = (...args) => active().imports.crypto.sm4Encrypt(...args);
export const sm4Decrypt = (...args) => active().imports.crypto.sm4Decrypt(...args);
