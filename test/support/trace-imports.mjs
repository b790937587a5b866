/**
 * `node --import ./test/support/trace-imports.mjs …` appends the URL of every module the process
 * resolves to $TRACE_IMPORTS_OUT, one a line: what a command really loads (start-up cost).
 */
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (process.env.TRACE_IMPORTS_OUT) appendFileSync(process.env.TRACE_IMPORTS_OUT, resolved.url + '\\n');
  return resolved;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
