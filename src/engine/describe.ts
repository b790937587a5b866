/** `runbook describe`: what a runbook does, its params, and which steps are destructive. */
import { isSecret } from '../shell/secret.js';
import type { LoadedRunbook } from './loader.js';
import { isPhase } from './scheduler.js';
import type { ParamSpecs, StepDef } from './types.js';

function stepLine(s: StepDef<any, any>, indent: string): string {
  const bits = [
    typeof s.on === 'string' ? `on ${s.on}` : s.on ? 'on (computed)' : undefined,
    s.confirm?.destructive ? 'DESTRUCTIVE: needs confirmation, or --yes / --approve ' + s.id + ' without a terminal' : s.confirm ? 'asks for confirmation' : undefined,
    s.tags?.length ? `tags ${s.tags.join(',')}` : undefined,
    s.notify?.length ? `notifies ${s.notify.join(',')}` : undefined,
    s.runOnce ? 'run once' : undefined,
    s.retries ? `retries ${s.retries}` : undefined,
  ].filter(Boolean);
  return `${indent}${s.id}: ${s.title}${bits.length ? `  (${bits.join('; ')})` : ''}`;
}

export function describeRunbook({ def, file, docs }: LoadedRunbook): string {
  const out: string[] = [`${def.id}: ${def.description}`, `file: ${file}`, '', 'params:'];
  const params = Object.entries(def.params as ParamSpecs);
  if (params.length === 0) out.push('  (none)');
  for (const [name, p] of params) {
    const dflt = p.default === undefined ? '' : ` default ${isSecret(p.default) ? '***' : JSON.stringify(p.default)}`;
    const req = p.required ? ' required' : '';
    const choices = p.choices ? ` one of ${p.choices.join('|')}` : '';
    out.push(`  ${name} (${p.type}${req}${dflt}${choices}): ${p.description}`);
  }
  out.push('', 'steps:');
  for (const item of def.steps) {
    if (isPhase(item)) {
      out.push(`  phase ${item.phase}:`);
      for (const s of item.steps) out.push(stepLine(s, '    '));
    } else out.push(stepLine(item, '  '));
  }
  if (def.handlers?.length) {
    out.push('', 'handlers:');
    for (const h of def.handlers) out.push(stepLine(h, '  '));
  }
  const destructive = [...def.steps.flatMap((i) => (isPhase(i) ? i.steps : [i])), ...(def.handlers ?? [])].filter((s) => s.confirm?.destructive).map((s) => s.id);
  out.push('', `destructive steps: ${destructive.length ? destructive.join(', ') : 'none'}`);
  if (def.serial) out.push(`serial: ${def.serial} host(s) per batch`);
  if (def.anyErrorsFatal) out.push('any error is fatal: one failed host stops every host');
  if (docs) out.push('', docs.trimEnd());
  return `${out.join('\n')}\n`;
}
