/**
 * The drill's report files: Markdown for people, JSON for machines, JUnit for CI, SVG timeline.
 * Everything written is masked, like every other output of runbook.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { maskDeep, maskSecrets } from '../shell/secret.js';
import type { Difference } from './compare.js';
import { renderTimelineSvg } from './timeline-svg.js';
import type { DrillReport } from './types.js';
import { xmlEscape } from '../report/xml.js';
import { describeMode } from './budget.js';
import { describeHistory } from './workload.js';

export interface ReportPaths {
  markdown: string;
  json: string;
  junit: string;
  svg: string;
}

export async function writeDrillReport(dir: string, report: DrillReport, differences?: Difference[]): Promise<ReportPaths> {
  await mkdir(dir, { recursive: true });
  const paths: ReportPaths = {
    markdown: join(dir, 'drill.md'),
    json: join(dir, 'drill.json'),
    junit: join(dir, 'drill.junit.xml'),
    svg: join(dir, 'drill-timeline.svg'),
  };
  const masked = maskDeep(report);
  await writeFile(paths.json, `${JSON.stringify({ ...masked, comparison: differences }, null, 2)}\n`);
  await writeFile(paths.markdown, maskSecrets(renderMarkdown(masked, differences)));
  await writeFile(paths.junit, maskSecrets(renderJunit(masked)));
  await writeFile(paths.svg, maskSecrets(renderTimelineSvg(masked)));
  return paths;
}

export function renderMarkdown(report: DrillReport, differences?: Difference[]): string {
  const ms = (v: number | null): string => (v === null ? 'n/a' : `${v} ms`);
  const lines = [
    `# Failover drill (${report.fault}): ${report.ok ? 'passed' : 'FAILED'}`,
    '',
    `${report.started_at} → ${report.finished_at}, service address ${report.service_address}.`,
    report.failure ? `\n**Failure:** ${report.failure}\n` : '',
    '| measure | value |',
    '| --- | --- |',
    `| RTO (fault → first acknowledged write after the outage) | ${ms(report.rto_ms)} |`,
    `| Write outage of the planned switchover back | ${ms(report.switchover_outage_ms)} |`,
    `| Acknowledged writes lost (RPO) | ${report.rpo_lost_writes} |`,
    `| Acknowledged writes lost in the switchover | ${report.switchover_lost_writes} |`,
    `| Replication lag before the fault | ${report.lag_before_fault_bytes === null ? 'n/a' : `${report.lag_before_fault_bytes} bytes`} |`,
    `| Probe writes (acknowledged / failed) | ${report.probe_writes} (${report.probe_acknowledged} / ${report.probe_failed}) |`,
    ...(report.replication_mode ? [`| Replication mode | ${describeMode(report.replication_mode)} |`] : []),
    ...(report.fence ? [`| Old primary proved dead or fenced by | ${report.fence.verdict}: ${report.fence.detail} |`] : []),
    '',
    '## Loss budgets',
    '',
    '| budget | lost | max | result |',
    '| --- | --- | --- | --- |',
    ...(report.budgets ?? []).map((b) => `| ${b.name} | ${b.lost} | ${b.max ?? 'none (reported only)'} | ${b.ok ? 'ok' : 'EXCEEDED'}: ${b.basis} |`),
    '',
    ...workloadLines(report),
    ...faultLines(report),
    ...(report.markers?.length ? ['## Marks', '', ...report.markers.map((m) => `- ${new Date(m.at).toISOString()} ${m.name}${m.detail ? `: ${m.detail}` : ''}`), ''] : []),
    ...(report.write_gaps?.length ? ['## Write gaps (no acknowledged probe write)', '', ...report.write_gaps.map((g) => `- ${new Date(g.from).toISOString()} → ${new Date(g.to).toISOString()}: ${g.to - g.from} ms`), ''] : []),
    '## Phases',
    '',
    '| phase | duration | result |',
    '| --- | --- | --- |',
    ...report.phases.map((p) => `| ${p.name} | ${p.endedAt - p.startedAt} ms | ${p.ok ? 'ok' : `failed: ${p.detail ?? ''}`} |`),
    '',
    '## Exit checks',
    '',
    ...report.exit_checks.map((c) => `- ${c.ok ? '✔' : '✘'} ${c.name}: ${c.detail}`),
    '',
  ];
  if (Object.keys(report.step_timings).length) {
    lines.push('## Step timings', '', '| step | ms |', '| --- | --- |');
    for (const [step, t] of Object.entries(report.step_timings)) lines.push(`| ${step} | ${t} |`);
    lines.push('');
  }
  if (differences) {
    lines.push('## Compared with the previous drill', '', '| measure | previous | now | |', '| --- | --- | --- | --- |');
    for (const d of differences) lines.push(`| ${d.measure} | ${d.previous ?? 'n/a'} | ${d.current ?? 'n/a'} | ${d.regression ? 'REGRESSION' : ''} |`);
    lines.push('');
  }
  lines.push('Timeline: drill-timeline.svg', '');
  return lines.join('\n');
}

function workloadLines(report: DrillReport): string[] {
  const w = report.workload;
  if (!w) return [];
  return [
    '## Workload (pgbench)',
    '',
    `${w.clients} clients${w.rate ? ` at ${w.rate} tx/s` : ''} in ${w.rounds} rounds: **${w.committed} acknowledged** (per-transaction log; the summaries said ${w.summary_committed}), ${w.failed} failed, ${w.aborted_clients} clients aborted (their server went away), ${w.refused_rounds} rounds could not connect; ${w.in_flight_at_abort} transactions were in flight when their connection died (not acknowledged).`,
    w.history_rows === undefined
      ? 'pgbench_history on the final primary: not read.'
      : `pgbench_history on the final primary: **${w.history_rows} rows**; acknowledged but missing: ${w.lost ?? 0}; present but never acknowledged: ${w.unacknowledged_present ?? 0}.`,
    '',
    `${describeHistory(w)}.`,
    '',
  ];
}

function faultLines(report: DrillReport): string[] {
  const out: string[] = [];
  const p = report.partition;
  if (p) {
    out.push('## Partition', '', `- cut by ${p.tool}: ${p.addresses.join(', ')}; guard ${p.guard}; deadline ${p.deadline}`);
    if (p.cut_verified) out.push(`- cut verified: ${p.cut_verified}`);
    if (p.restored_verified) out.push(`- restored: ${p.restored_verified}`);
    out.push('');
  }
  const l = report.lag;
  if (l) {
    out.push('## Lagging standby', '', `- ${l.standby}: replay paused, ${l.lag_bytes ?? 'n/a'} bytes behind when the primary stopped`);
    if (l.refused) out.push(`- promotion of ${l.standby} refused: ${l.refused}`);
    if (l.promoted) out.push(`- promoted instead: ${l.promoted}`);
    out.push('');
  }
  const g = report.ledger;
  if (g) {
    out.push('## Divergence ledger (failback)', '', `**${g.committed} committed transactions** past the divergence were discarded by the rejoin (kept in the ledger directory on the node), ${g.never_committed} never committed.`, '');
    out.push('| node | diverged at | WAL records past it | committed | never committed | ledger |', '| --- | --- | --- | --- | --- | --- |');
    for (const n of g.nodes) out.push(`| ${n.node} | ${n.diverged_at ?? 'no divergence'} | ${n.records} | ${n.committed} | ${n.never_committed} | ${n.dir ?? n.detail} |`);
    out.push('');
  }
  return out;
}

export function renderJunit(report: DrillReport): string {
  const cases = [
    ...report.phases.map((p) => ({ name: `phase ${p.name}`, ms: p.endedAt - p.startedAt, failure: p.ok ? undefined : p.detail ?? 'failed' })),
    ...report.exit_checks.map((c) => ({ name: `exit check ${c.name}`, ms: 0, failure: c.ok ? undefined : c.detail })),
    ...(report.budgets ?? []).map((b) => ({ name: `loss budget ${b.name}`, ms: 0, failure: b.ok ? undefined : b.detail })),
  ];
  const failures = cases.filter((c) => c.failure !== undefined).length;
  const total = (report.phases.reduce((s, p) => s + p.endedAt - p.startedAt, 0) / 1000).toFixed(3);
  const body = cases
    .map((c) => {
      const open = `    <testcase classname="drill.${xmlEscape(report.fault)}" name="${xmlEscape(c.name)}" time="${(c.ms / 1000).toFixed(3)}"`;
      return c.failure === undefined
        ? `${open}/>`
        : `${open}>\n      <failure message="${xmlEscape(c.failure)}">${xmlEscape(c.failure)}</failure>\n    </testcase>`;
    })
    .join('\n');
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="runbook drill" tests="${cases.length}" failures="${failures}" time="${total}">`,
    `  <testsuite name="drill-${xmlEscape(report.fault)}" tests="${cases.length}" failures="${failures}" time="${total}">`,
    body,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
