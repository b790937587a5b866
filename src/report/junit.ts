/**
 * JUnit XML: one testsuite per runbook, one testcase per step@host. failed / blocked → <failure>
 * (with the command, exit code and stderr tail), unreachable → <error>, skipped → <skipped>.
 * Text is masked, and characters XML 1.0 cannot hold are dropped.
 */
import type { RunReport } from './json.js';
import { xmlEscape } from './xml.js';

const secs = (ms: number) => (ms / 1000).toFixed(3);

export function renderJunit(report: RunReport): string {
  const r = report.results;
  const failures = r.filter((x) => x.status === 'failed' || x.status === 'blocked').length;
  const errors = r.filter((x) => x.status === 'unreachable').length;
  const skipped = r.filter((x) => x.status === 'skipped' || x.status === 'unverified').length;
  const cases = r.map((x) => {
    const name = xmlEscape(`${x.stepId}@${x.host}`);
    const cls = xmlEscape(`${report.runbook.id}.${x.stepId}`);
    const open = `    <testcase name="${name}" classname="${cls}" time="${secs(x.durationMs)}">`;
    let body = '';
    if (x.status === 'failed' || x.status === 'blocked') {
      const f = x.failure;
      const detail = [
        f?.command !== undefined ? `command: ${f.command}` : undefined,
        f?.exitCode !== undefined ? `exit code: ${f.exitCode}` : undefined,
        f?.stderrTail ? `stderr:\n${f.stderrTail}` : undefined,
      ]
        .filter(Boolean)
        .join('\n');
      const type = x.status === 'blocked' ? 'blocked' : (f?.kind ?? 'step');
      body = `\n      <failure message="${xmlEscape(f?.message ?? x.message)}" type="${type}">${xmlEscape(detail)}</failure>\n    `;
    } else if (x.status === 'unreachable') body = `\n      <error message="${xmlEscape(x.message)}" type="unreachable"/>\n    `;
    else if (x.status === 'skipped' || x.status === 'unverified') body = `\n      <skipped message="${xmlEscape(x.message)}"/>\n    `;
    else body = `\n      <system-out>${xmlEscape(`${x.status}: ${x.message}${x.commands.length ? `\n${x.commands.map((c) => `$ ${c}`).join('\n')}` : ''}`)}</system-out>\n    `;
    return `${open}${body}</testcase>`;
  });
  const attrs = `tests="${r.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${secs(report.durationMs)}"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="runbook" ${attrs}>`,
    `  <testsuite name="${xmlEscape(report.runbook.id)}" ${attrs} timestamp="${xmlEscape(report.startedAt)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
