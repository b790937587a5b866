/**
 * A Node module resolve hook (module.register), chained under tsx's:
 * - the bare specifier `runbook` resolves to this package's own compiled entry point, so a user
 *   runbook in any directory — with no node_modules — shares the CLI's module instances (Secret,
 *   Command identity);
 * - a .ts file outside node_modules is ESM even without a package.json saying "type": "module"
 *   (runbooks are written with import/export; tsx would otherwise compile them to CommonJS).
 */
interface ResolveContext {
  parentURL?: string;
}
interface Resolved {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<Resolved>;

const entry = new URL('../index.js', import.meta.url).href;
/** `runbook/postgres`, `runbook/nfs`, …: the domain modules (package.json "exports"). */
const MODULES = new Set(['postgres', 'nfs', 'vip', 'keepalives', 'filesync']);

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<Resolved> {
  if (specifier === 'runbook') return { url: entry, format: 'module', shortCircuit: true };
  const sub = /^runbook\/([a-z]+)$/.exec(specifier)?.[1];
  if (sub && MODULES.has(sub)) return { url: new URL(`../modules/${sub}/index.js`, import.meta.url).href, format: 'module', shortCircuit: true };
  const r = await next(specifier, context);
  if (r.url.startsWith('file:') && /\.tsx?$/.test(new URL(r.url).pathname) && !r.url.includes('/node_modules/') && !r.format) return { ...r, format: 'module' };
  return r;
}
