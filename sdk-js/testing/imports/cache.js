// The fake of gov:adapter/cache: every call goes to the harness of the test running.
import { active } from '../harness.js';
export const get = (...args) => active().imports.cache.get(...args);
export const set = (...args) => active().imports.cache.set(...args);
const remove = (...args) => active().imports.cache.delete(...args);
export { remove as delete };
