/** `runbook check` output: Nagios plugin text (with perfdata), JSON, or JUnit XML. */
import { xmlEscape } from '../../report/xml.js';
import { type Finding, LEVEL_NAMES, type Level, overall } from './verdicts.js';

export type CheckFormat = 'nagios' | 'json' | 'junit';

const label = (f: Finding) => `${f.part}/${f.check}@${f.host}`;
const perfLabel = (f: Finding) => `${f.host}_${f.check}`.replace(/[^A-Za-z0-9_.-]/g, '_');

export function formatNagios(findings: Finding[]): string {
  const level = overall(findings);
  const bad = findings.filter((f) => f.level !== 0).sort((a, b) => rank(b.level) - rank(a.level));
  const counts = ([2, 1, 3] as Level[]).map((l) => [l, findings.filter((f) => f.level === l).length] as const).filter(([, n]) => n);
  const head =
    level === 0
      ? `RUNBOOK CHECK OK - ${findings.length} checks passed`
      : `RUNBOOK CHECK ${LEVEL_NAMES[level]} - ${counts.map(([l, n]) => `${n} ${LEVEL_NAMES[l].toLowerCase()}`).join(', ')}: ${bad.slice(0, 3).map((f) => f.message).join('; ')}`;
  const perf = findings
    .filter((f) => typeof f.figure === 'number' && typeof f.threshold === 'number' && f.unit)
    .map((f) => `'${perfLabel(f)}'=${f.figure}${f.unit === 'B' || f.unit === 's' ? f.unit : ''};;${f.threshold}`)
    .join(' ');
  const lines = [...findings].sort((a, b) => rank(b.level) - rank(a.level)).map((f) => `[${LEVEL_NAMES[f.level]}] ${label(f)}: ${f.message}`);
  return `${head.replace(/\|/g, '/')}${perf ? ` | ${perf}` : ''}\n${lines.map((l) => l.replace(/\|/g, '/')).join('\n')}\n`;
}

/** CRITICAL > WARNING > UNKNOWN > OK for ordering. */
function rank(l: Level): number {
  return l === 2 ? 3 : l === 1 ? 2 : l === 3 ? 1 : 0;
}

export function formatJson(findings: Finding[], extra: Record<string, unknown> = {}): string {
  const level = overall(findings);
  return `${JSON.stringify({ status: LEVEL_NAMES[level], code: level, ...extra, findings: findings.map((f) => ({ ...f, status: LEVEL_NAMES[f.level] })) }, null, 2)}\n`;
}

/** One testcase per finding: CRITICAL and WARNING are failures (type says which), UNKNOWN an error. */
export function formatJunit(findings: Finding[]): string {
  const failures = findings.filter((f) => f.level === 1 || f.level === 2).length;
  const errors = findings.filter((f) => f.level === 3).length;
  const cases = findings.map((f) => {
    const name = xmlEscape(`${f.check}@${f.host}`);
    const cls = xmlEscape(`runbook.check.${f.part}`);
    const msg = xmlEscape(f.message);
    if (f.level === 0) return `    <testcase classname="${cls}" name="${name}"><system-out>${msg}</system-out></testcase>`;
    const tag = f.level === 3 ? 'error' : 'failure';
    return `    <testcase classname="${cls}" name="${name}"><${tag} type="${LEVEL_NAMES[f.level]}" message="${msg}">${msg}</${tag}></testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n  <testsuite name="runbook check" tests="${findings.length}" failures="${failures}" errors="${errors}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}

export function formatFindings(format: CheckFormat, findings: Finding[], extra: Record<string, unknown> = {}): string {
  return format === 'json' ? formatJson(findings, extra) : format === 'junit' ? formatJunit(findings) : formatNagios(findings);
}
