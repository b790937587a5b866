/**
 * An SVG timeline of a drill: one tick per probe write (green acknowledged, red failed) over time,
 * phase bands with their names, and a marker at the fault. People read a timeline faster than a
 * table. Self-contained SVG: no fonts or scripts loaded from anywhere.
 */
import { xmlEscape } from '../report/xml.js';
import type { DrillReport } from './types.js';

const WIDTH = 1000;
const LEFT = 60;
const RIGHT = 20;
const PHASE_TOP = 30;
const PHASE_HEIGHT = 26;
const PROBE_TOP = 80;
const PROBE_HEIGHT = 60;
const HEIGHT = 200;
const PHASE_COLOURS = ['#dbe9f6', '#fde9d2', '#e3f1dc', '#efe0f3', '#f6f1cf', '#dcefef'];

export function renderTimelineSvg(report: DrillReport): string {
  const times = [
    ...report.samples.map((s) => s.sentAt),
    ...report.samples.map((s) => s.ackAt ?? s.sentAt),
    ...report.phases.flatMap((p) => [p.startedAt, p.endedAt]),
  ];
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 1);
  const x = (t: number): number => LEFT + ((t - t0) / (t1 - t0)) * (WIDTH - LEFT - RIGHT);

  const phases = report.phases.map((p, i) => {
    const x0 = x(p.startedAt);
    const w = Math.max(1, x(p.endedAt) - x0);
    const fill = p.ok ? PHASE_COLOURS[i % PHASE_COLOURS.length] : '#f4c7c3';
    return (
      `<g class="phase" data-phase="${xmlEscape(p.name)}">` +
      `<rect x="${x0.toFixed(1)}" y="${PHASE_TOP}" width="${w.toFixed(1)}" height="${PHASE_HEIGHT}" fill="${fill}" stroke="#888"/>` +
      `<text x="${(x0 + 3).toFixed(1)}" y="${PHASE_TOP + 17}" font-size="11">${xmlEscape(p.name)}</text>` +
      `<title>${xmlEscape(`${p.name}: ${p.endedAt - p.startedAt} ms${p.ok ? '' : ' (failed)'}`)}</title></g>`
    );
  });
  const ticks = report.samples.map((s) => {
    const ok = s.ackAt !== undefined;
    const y = ok ? PROBE_TOP : PROBE_TOP + PROBE_HEIGHT / 2;
    return `<line x1="${x(s.sentAt).toFixed(1)}" x2="${x(s.sentAt).toFixed(1)}" y1="${y}" y2="${y + PROBE_HEIGHT / 2}" stroke="${ok ? '#2e7d32' : '#c62828'}"/>`;
  });
  const fault = x(report.fault_at);
  const seconds = Math.ceil((t1 - t0) / 1000);
  const step = Math.max(1, Math.ceil(seconds / 10));
  const axis: string[] = [];
  for (let s = 0; s <= seconds; s += step) {
    const ax = x(t0 + s * 1000);
    axis.push(`<line x1="${ax.toFixed(1)}" x2="${ax.toFixed(1)}" y1="150" y2="155" stroke="#333"/><text x="${ax.toFixed(1)}" y="168" font-size="10" text-anchor="middle">${s}s</text>`);
  }
  const title = `Drill (${report.fault}): RTO ${fmt(report.rto_ms)}, switchover outage ${fmt(report.switchover_outage_ms)}, lost writes ${report.rpo_lost_writes}`;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif">`,
    `<title>${xmlEscape(title)}</title>`,
    `<text x="${LEFT}" y="18" font-size="13">${xmlEscape(title)}</text>`,
    `<g id="phases">${phases.join('')}</g>`,
    `<text x="4" y="${PROBE_TOP + 14}" font-size="10">acked</text><text x="4" y="${PROBE_TOP + 44}" font-size="10">failed</text>`,
    `<g id="probe">${ticks.join('')}</g>`,
    `<g id="fault"><line x1="${fault.toFixed(1)}" x2="${fault.toFixed(1)}" y1="${PHASE_TOP}" y2="150" stroke="#000" stroke-dasharray="4 2"/><text x="${(fault + 3).toFixed(1)}" y="${PROBE_TOP - 4}" font-size="10">fault: ${xmlEscape(report.fault)}</text></g>`,
    `<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="150" y2="150" stroke="#333"/>`,
    axis.join(''),
    `</svg>`,
    '',
  ].join('\n');
}

function fmt(ms: number | null): string {
  return ms === null ? 'n/a' : `${ms} ms`;
}
