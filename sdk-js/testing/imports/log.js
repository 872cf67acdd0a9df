// The fake of gov:adapter/log: every call goes to the harness of the test running.
import { active } from '../harness.js';
export const log = (...args) => active().imports['log'].log(...args);
