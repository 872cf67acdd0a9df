/** The loader hook behind `register.js`: each interface of the contract to its fake module. */
const INTERFACES = new Set(['department-http', 'materials', 'config', 'cache', 'log', 'crypto']);

export async function resolve(specifier, context, next) {
  const m = /^gov:adapter\/([a-z-]+)@0\.3\.0$/.exec(specifier);
  if (m && INTERFACES.has(m[1])) {
    return { url: new URL(`./imports/${m[1]}.js`, import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
