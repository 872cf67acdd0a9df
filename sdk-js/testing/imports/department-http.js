// The fake of gov:adapter/department-http: every call goes to the harness of the test running.
import { active } from '../harness.js';
export const send = (...args) => active().imports['department-http'].send(...args);
