// The fake of gov:adapter/config: every call goes to the harness of the test running.
import { active } from '../harness.js';
export const get = (...args) => active().imports['config'].get(...args);
