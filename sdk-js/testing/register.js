/**
 * `node --import ./sdk-js/testing/register.js --test …`: resolves the contract's import
 * specifiers (`gov:adapter/<interface>@0.3.0`) to the harness's fakes, so an adapter's modules
 * load natively exactly as written for the component.
 */
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
