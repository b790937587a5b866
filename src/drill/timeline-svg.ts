/**
 * The drill's timeline as SVG, for people: the phases as bars, each named (inside the bar when
 * the name fits, else in a callout row below it with a leader line); the fault, the promotion,
 * the switchover and the partition's end as marked lines; write gaps shaded at their real width
 * with their length; every probe write as a tick (acknowledged / failed); acknowledged writes per
 * second of the probe and of the workload as lines. Every label's box is computed here and kept
 * inside the picture and apart from the others (timelineLayout is what the PNG test checks).
 * Self-contained: no fonts, scripts or images loaded from anywhere.
 */
import { xmlEscape } from '../report/xml.js';
import { acksPerSecond } from './measures.js';
import type { DrillReport } from './types.js';

const WIDTH = 1100;
const LEFT = 78;
const RIGHT = 24;
const PHASE_COLOURS = ['#cfe2f3', '#fce5cd', '#d9ead3', '#e6d5ee', '#fff2cc', '#d0e0e3', '#f4cccc', '#d9d2e9'];
const MARKER_COLOURS: Record<string, string> = { fault: '#cc0000', promote: '#1155cc', switchover: '#6a329f' };

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface Label {
  id: string;
  text: string;
  x: number;
  /** Baseline. */
  y: number;
  size: number;
  anchor: 'start' | 'middle' | 'end';
  box: Box;
  weight?: 'bold';
  fill?: string;
}

/**
 * Width of text in a sans-serif font, a little generous (DejaVu Sans, the widest common default):
 * the PNG test checks that the real ink stays inside this estimate.
 */
export function textWidth(text: string, size: number): number {
  let em = 0;
  for (const ch of text) {
    if ('iljI.,:;|!\'`()[] '.includes(ch)) em += 0.36;
    else if ('mwMW%@'.includes(ch)) em += 0.98;
    else if (/[A-Z]/.test(ch)) em += 0.76;
    else if (/[0-9a-z]/.test(ch)) em += 0.64;
    else em += 1.0;
  }
  return em * size;
}

function labelAt(id: string, text: string, x: number, y: number, size: number, anchor: Label['anchor'] = 'start', extra: Partial<Label> = {}): Label {
  const w = textWidth(text, size);
  const x0 = anchor === 'start' ? x : anchor === 'middle' ? x - w / 2 : x - w;
  return { id, text, x, y, size, anchor, box: { x0, y0: y - size * 0.95, x1: x0 + w, y1: y + size * 0.3 }, ...extra };
}

/** Rows of placed spans; the first row where [x0, x1] fits (with a margin) wins. */
class Rows {
  readonly rows: Array<Array<[number, number]>> = [];
  place(x0: number, x1: number): number {
    for (let i = 0; ; i++) {
      if (this.#free(i, x0, x1)) {
        (this.rows[i] ??= []).push([x0, x1]);
        return i;
      }
    }
  }

  /** A label with a vertical leader at lx from the top: the rows above keep lx clear too. */
  placeWithLeader(lx: number, x0: number, x1: number): number {
    // Once a row holds a label across lx, no row below can be reached: then the leader crosses.
    for (let i = 0, n = this.rows.length; i <= n; i++) {
      const above = Array.from({ length: i }, (_, r) => r);
      if (this.#free(i, Math.min(lx, x0), x1) && above.every((r) => this.#free(r, lx - 1, lx + 1))) {
        (this.rows[i] ??= []).push([Math.min(lx, x0), x1]);
        for (const r of above) this.rows[r]!.push([lx - 1, lx + 1]);
        return i;
      }
    }
    return this.place(Math.min(lx, x0), x1);
  }

  #free(i: number, x0: number, x1: number): boolean {
    return (this.rows[i] ?? []).every(([a, b]) => x1 + 6 < a || x0 - 6 > b);
  }
}

/** Keep a label of width w starting near x inside [LEFT-ish, WIDTH - RIGHT]. */
function clampStart(x: number, w: number): number {
  return Math.max(4, Math.min(x, WIDTH - RIGHT - w));
}

export interface TimelineLayout {
  width: number;
  height: number;
  labels: Label[];
  svg: string;
}

export function timelineLayout(report: DrillReport): TimelineLayout {
  const labels: Label[] = [];
  const body: string[] = [];
  const times = [
    ...report.phases.flatMap((p) => [p.startedAt, p.endedAt]),
    ...report.samples.map((s) => s.sentAt),
    ...report.samples.map((s) => s.ackAt ?? s.sentAt),
  ];
  const t0 = times.length ? Math.min(...times) : report.fault_at;
  const t1 = Math.max(...times, t0 + 1000);
  const plotW = WIDTH - LEFT - RIGHT;
  const x = (t: number): number => LEFT + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * plotW;
  const ms = (v: number | null): string => (v === null ? 'n/a' : v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

  // Title and subtitle.
  const verdict = report.ok ? 'passed' : 'FAILED';
  labels.push(labelAt('title', `Failover drill (${report.fault}): ${verdict}`, LEFT, 20, 14, 'start', { weight: 'bold' }));
  const workload = report.workload;
  const subtitle = [
    `RTO ${ms(report.rto_ms)}`,
    `switchover outage ${ms(report.switchover_outage_ms)}`,
    `lost writes ${report.rpo_lost_writes}${workload?.lost !== undefined ? ` (pgbench ${workload.lost})` : ''}`,
    ...(report.fence ? [`fence: ${report.fence.verdict}`] : []),
  ].join(' · ');
  labels.push(labelAt('subtitle', subtitle, LEFT, 38, 11));

  // Phase bars.
  const phaseTop = 50;
  const phaseH = 24;
  const callouts = new Rows();
  const calloutTop = phaseTop + phaseH + 14;
  const pending: Array<() => void> = [];
  report.phases.forEach((p, i) => {
    const x0 = x(p.startedAt);
    const w = Math.max(2, x(p.endedAt) - x0);
    const fill = p.ok ? PHASE_COLOURS[i % PHASE_COLOURS.length] : '#ea9999';
    const text = p.ok ? p.name : `${p.name} (failed)`;
    body.push(
      `<g class="phase" data-phase="${xmlEscape(p.name)}"><rect x="${x0.toFixed(1)}" y="${phaseTop}" width="${w.toFixed(1)}" height="${phaseH}" fill="${fill}" stroke="#666" stroke-width="0.6"/>` +
        `<title>${xmlEscape(`${p.name}: ${p.endedAt - p.startedAt} ms${p.ok ? '' : ` (failed: ${p.detail ?? ''})`}`)}</title></g>`,
    );
    const tw = textWidth(text, 11);
    if (tw + 8 <= w) {
      labels.push(labelAt(`phase:${p.name}`, text, x0 + w / 2, phaseTop + 16, 11, 'middle'));
    } else {
      // Narrow bar: a callout below it, on a vertical leader that no other callout crosses.
      pending.push(() => {
        const cx = x0 + w / 2;
        const start = clampStart(cx + 3, tw);
        const row = callouts.placeWithLeader(cx, start, start + tw);
        const y = calloutTop + row * 15;
        labels.push(labelAt(`phase:${p.name}`, text, start, y, 11, 'start'));
        body.push(`<line x1="${cx.toFixed(1)}" y1="${phaseTop + phaseH}" x2="${cx.toFixed(1)}" y2="${(y - 4).toFixed(1)}" stroke="#666" stroke-width="0.8"/>`);
      });
    }
  });
  for (const f of pending) f();
  const calloutRows = callouts.rows.length;
  const y = calloutTop + calloutRows * 15 + (calloutRows ? 2 : -12);

  // Write gaps' lengths, then the marks' names; the marks' lines start below their names and
  // the gaps' shading below theirs, so no line crosses a label.
  const gapRows = new Rows();
  const gapLabelTop = y + 12;
  const gapLabels: Array<{ text: string; start: number; row: number; i: number }> = [];
  report.write_gaps.forEach((g, i) => {
    const text = `gap ${((g.to - g.from) / 1000).toFixed(1)} s`;
    const tw = textWidth(text, 10);
    const start = clampStart((x(g.from) + x(g.to)) / 2 - tw / 2, tw);
    gapLabels.push({ text, start, row: gapRows.place(start, start + tw), i });
  });
  for (const g of gapLabels) labels.push(labelAt(`gap:${g.i}`, g.text, g.start, gapLabelTop + g.row * 13, 10, 'start', { fill: '#990000' }));
  const gapShadeTop = gapLabelTop + Math.max(0, gapRows.rows.length - 1) * 13 + 5;

  const markers = [{ name: 'fault', at: report.fault_at, detail: report.fault }, ...report.markers.filter((m) => m.name !== 'fault')];
  const markerRows = new Rows();
  const markerTop = gapShadeTop + 13;
  const markerLabels: Array<{ m: (typeof markers)[number]; row: number; start: number; text: string }> = [];
  for (const m of markers) {
    const text = m.name === 'fault' ? `fault: ${report.fault}` : m.name;
    const tw = textWidth(text, 10);
    const start = clampStart(x(m.at) + 3, tw);
    markerLabels.push({ m, row: markerRows.placeWithLeader(x(m.at), start, start + tw), start, text });
  }
  for (const { m, row, start, text } of markerLabels) {
    labels.push(labelAt(`marker:${m.name}`, text, start, markerTop + row * 13, 10, 'start', { fill: MARKER_COLOURS[m.name] ?? '#333' }));
  }
  const probeTop = markerTop + Math.max(1, markerRows.rows.length) * 13;

  // Probe ticks.
  const probeH = 34;
  labels.push(labelAt('lane:probe', 'probe', 4, probeTop + 13, 10));
  labels.push(labelAt('lane:acked', 'ok', LEFT - 18, probeTop + 11, 9, 'start', { fill: '#38761d' }));
  labels.push(labelAt('lane:failed', 'fail', LEFT - 22, probeTop + 29, 9, 'start', { fill: '#cc0000' }));
  const ticks: string[] = [];
  for (const s of report.samples) {
    const tx = x(s.sentAt).toFixed(1);
    ticks.push(s.ackAt !== undefined ? `<line x1="${tx}" x2="${tx}" y1="${probeTop}" y2="${probeTop + 14}" stroke="#38761d"/>` : `<line x1="${tx}" x2="${tx}" y1="${probeTop + 20}" y2="${probeTop + 34}" stroke="#cc0000"/>`);
  }
  body.push(`<g id="probe">${ticks.join('')}</g>`);

  // Acknowledged writes per second: the probe's, and the workload's on its own scale.
  const rates: Array<{ id: string; name: string; colour: string; series: Array<[number, number]> }> = [
    { id: 'probe', name: 'probe writes/s', colour: '#1155cc', series: acksPerSecond(report.samples) },
  ];
  if (workload) rates.push({ id: 'workload', name: `pgbench tx/s (${workload.clients} clients)`, colour: '#e69138', series: workload.per_second.map(([t, n]) => [t, n]) });
  let laneY = probeTop + probeH + 8;
  const rateH = 44;
  for (const r of rates) {
    labels.push(labelAt(`rate:${r.id}`, r.name, LEFT, laneY + 10, 10, 'start', { fill: r.colour }));
    laneY += 14;
    const max = Math.max(1, ...r.series.map(([, n]) => n));
    const py = (n: number): number => laneY + rateH - (n / max) * rateH;
    const pts = r.series.map(([t, n]) => `${x(t * 1000 + 500).toFixed(1)},${py(n).toFixed(1)}`).join(' ');
    body.push(`<rect x="${LEFT}" y="${laneY}" width="${plotW}" height="${rateH}" fill="none" stroke="#ddd"/>`);
    if (pts) body.push(`<polyline data-rate="${r.id}" points="${pts}" fill="none" stroke="${r.colour}" stroke-width="1.5"/>`);
    labels.push(labelAt(`rate:${r.id}:max`, String(max), LEFT - 6, laneY + 9, 9, 'end'));
    labels.push(labelAt(`rate:${r.id}:zero`, '0', LEFT - 6, laneY + rateH, 9, 'end'));
    laneY += rateH + 8;
  }
  const lanesBottom = laneY - 8;

  // Gap shading and marker lines over the lanes.
  for (const g of report.write_gaps) {
    body.push(`<rect class="gap" x="${x(g.from).toFixed(1)}" y="${gapShadeTop}" width="${Math.max(1, x(g.to) - x(g.from)).toFixed(1)}" height="${(lanesBottom - gapShadeTop).toFixed(1)}" fill="#cc0000" fill-opacity="0.12"/>`);
  }
  for (const { m, row } of markerLabels) {
    const mx = x(m.at).toFixed(1);
    body.push(`<line class="marker" data-marker="${xmlEscape(m.name)}" x1="${mx}" x2="${mx}" y1="${markerTop + row * 13 - 10}" y2="${lanesBottom}" stroke="${MARKER_COLOURS[m.name] ?? '#333'}" stroke-width="1.2" stroke-dasharray="5 3"><title>${xmlEscape(`${m.name}${m.detail ? `: ${m.detail}` : ''}`)}</title></line>`);
  }

  // Time axis.
  const axisY = lanesBottom + 8;
  body.push(`<line x1="${LEFT}" x2="${WIDTH - RIGHT}" y1="${axisY}" y2="${axisY}" stroke="#333"/>`);
  const seconds = (t1 - t0) / 1000;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => seconds / s <= 12) ?? 1200;
  for (let s = 0; s <= seconds; s += step) {
    const ax = x(t0 + s * 1000);
    body.push(`<line x1="${ax.toFixed(1)}" x2="${ax.toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/>`);
    const text = `${s}s`;
    const tw = textWidth(text, 10);
    labels.push(labelAt(`axis:${s}`, text, clampStart(ax - tw / 2, tw), axisY + 16, 10, 'start'));
  }

  // Legend.
  const legendY = axisY + 36;
  const legend: Array<{ id: string; text: string; swatch: string }> = [
    { id: 'acked', text: 'acknowledged write', swatch: `<rect width="10" height="10" fill="#38761d"/>` },
    { id: 'failed', text: 'failed write', swatch: `<rect width="10" height="10" fill="#cc0000"/>` },
    { id: 'gap', text: 'write gap', swatch: `<rect width="10" height="10" fill="#cc0000" fill-opacity="0.25"/>` },
    ...markerLabels.map(({ m }) => ({ id: `marker-${m.name}`, text: m.name, swatch: `<rect width="10" height="3" y="4" fill="${MARKER_COLOURS[m.name] ?? '#333'}"/>` })),
  ];
  let lx = LEFT;
  let ly = legendY;
  for (const item of legend) {
    const tw = textWidth(item.text, 10);
    if (lx + 14 + tw > WIDTH - RIGHT) {
      lx = LEFT;
      ly += 16;
    }
    body.push(`<g transform="translate(${lx.toFixed(1)},${ly - 9})">${item.swatch}</g>`);
    labels.push(labelAt(`legend:${item.id}`, item.text, lx + 14, ly, 10));
    lx += 14 + tw + 18;
  }
  const height = Math.ceil(ly + 12);

  const text = labels
    .map((l) => `<text data-label="${xmlEscape(l.id)}" x="${l.x.toFixed(1)}" y="${l.y.toFixed(1)}" font-size="${l.size}" text-anchor="${l.anchor}"${l.weight ? ` font-weight="${l.weight}"` : ''}${l.fill ? ` fill="${l.fill}"` : ''}>${xmlEscape(l.text)}</text>`)
    .join('\n');
  const svg = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Verdana, sans-serif">`,
    `<title>${xmlEscape(`${labels[0]!.text}: ${subtitle}`)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    body.join('\n'),
    text,
    `</svg>`,
    '',
  ].join('\n');
  return { width: WIDTH, height, labels, svg };
}

export function renderTimelineSvg(report: DrillReport): string {
  return timelineLayout(report).svg;
}
