/**
 * A Node module resolve hook (module.register): the bare specifier `runbook` (and `runbook/…`)
 * resolves to this package's own compiled entry point, so a user runbook in any directory — with
 * no node_modules — imports the same module instances as the CLI (Secret, Command identity).
 */
interface ResolveContext {
  parentURL?: string;
}
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

const entry = new URL('../index.js', import.meta.url).href;

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'runbook') return { url: entry, shortCircuit: true };
  return next(specifier, context);
}
