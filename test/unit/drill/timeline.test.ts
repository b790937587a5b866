/**
 * The timeline as people see it: every phase named (short phases through callouts), marks for
 * the fault, the promotion and the switchover, write gaps at their real width, acknowledged
 * writes per second. The layout's label boxes are checked purely; then the SVG is rendered to PNG
 * by rsvg-convert (librsvg, as a browser or image viewer would) and each label's real ink is
 * found by rendering without it: the ink must be there, inside the picture and inside the box
 * the layout reserved (so labels cannot overlap or be cut off).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { timelineLayout, type Box } from '../../../src/drill/timeline-svg.js';
import { partitionReport } from './fixtures.js';

function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

describe('timeline layout', () => {
  it('names every phase, marks the fault, the promotion and the switchover, keeps labels apart and inside', () => {
    const report = partitionReport();
    const { svg, labels, width, height } = timelineLayout(report);
    expect(XMLValidator.validate(svg)).toBe(true);
    for (const p of report.phases) expect(labels.map((l) => l.id)).toContain(`phase:${p.name}`);
    for (const m of ['fault', 'promote', 'switchover', 'link restored']) expect(labels.map((l) => l.id)).toContain(`marker:${m}`);
    // The two outages are drawn as gaps, at their real width.
    expect(report.write_gaps.length).toBe(2);
    expect(svg.match(/class="gap"/g)?.length).toBe(2);
    expect(svg).toContain('data-rate="probe"');
    expect(svg).toContain('data-rate="workload"');
    for (const l of labels) {
      expect(l.box.x0, l.id).toBeGreaterThanOrEqual(0);
      expect(l.box.y0, l.id).toBeGreaterThanOrEqual(0);
      expect(l.box.x1, l.id).toBeLessThanOrEqual(width);
      expect(l.box.y1, l.id).toBeLessThanOrEqual(height);
    }
    for (let i = 0; i < labels.length; i++) {
      for (let j = i + 1; j < labels.length; j++) expect(overlaps(labels[i]!.box, labels[j]!.box), `${labels[i]!.id} / ${labels[j]!.id}`).toBe(false);
    }
  });
});

const rsvg = spawnSync('rsvg-convert', ['--version']).status === 0;

function render(svg: string, dir: string, name: string): PNG {
  const svgPath = join(dir, `${name}.svg`);
  writeFileSync(svgPath, svg);
  return PNG.sync.read(execFileSync('rsvg-convert', ['--format', 'png', svgPath]));
}

/**
 * Bounding box of the pixels that differ between two renders, looked for within `margin` px of
 * `near` (ink that spills past the margin still reaches its edge, and fails the test).
 */
function diffBox(a: PNG, b: PNG, near: Box, margin = 40): Box | undefined {
  let box: Box | undefined;
  for (let y = Math.max(0, Math.floor(near.y0) - margin); y < Math.min(a.height, Math.ceil(near.y1) + margin); y++) {
    for (let x = Math.max(0, Math.floor(near.x0) - margin); x < Math.min(a.width, Math.ceil(near.x1) + margin); x++) {
      const i = (y * a.width + x) * 4;
      if (Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!) > 30) {
        box = box ? { x0: Math.min(box.x0, x), y0: Math.min(box.y0, y), x1: Math.max(box.x1, x + 1), y1: Math.max(box.y1, y + 1) } : { x0: x, y0: y, x1: x + 1, y1: y + 1 };
      }
    }
  }
  return box;
}

describe.skipIf(!rsvg)('timeline rendered to PNG (rsvg-convert)', () => {
  it('draws every label, each inside the picture and inside its reserved box', () => {
    const dir = mkdtempSync(join(tmpdir(), 'drill-png-'));
    const { svg, labels, width, height } = timelineLayout(partitionReport());
    const full = render(svg, dir, 'full');
    expect(full.width).toBe(width);
    expect(full.height).toBe(height);
    // Labels whose neighbourhoods do not touch are taken out together: one render per group.
    const grow = (bx: Box, m: number): Box => ({ x0: bx.x0 - m, y0: bx.y0 - m, x1: bx.x1 + m, y1: bx.y1 + m });
    const groups: Array<typeof labels> = [];
    for (const l of labels) {
      const g = groups.find((members) => members.every((o) => !overlaps(grow(o.box, 42), grow(l.box, 42))));
      if (g) g.push(l);
      else groups.push([l]);
    }
    expect(groups.length).toBeLessThan(labels.length);
    for (const group of groups) {
      let without = svg;
      for (const l of group) {
        const next = without.replace(new RegExp(`<text data-label="${l.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"[^>]*>[^<]*</text>`), '');
        expect(next.length, l.id).toBeLessThan(without.length);
        without = next;
      }
      const png = render(without, dir, 'without');
      for (const l of group) {
        const ink = diffBox(full, png, l.box);
        expect(ink, `${l.id} "${l.text}" left no ink`).toBeDefined();
        // 1 px of antialiasing around the reserved box.
        expect(ink!.x0, `${l.id} "${l.text}" left edge`).toBeGreaterThanOrEqual(Math.max(0, Math.floor(l.box.x0) - 1));
        expect(ink!.x1, `${l.id} "${l.text}" right edge`).toBeLessThanOrEqual(Math.min(width, Math.ceil(l.box.x1) + 1));
        expect(ink!.y0, `${l.id} "${l.text}" top`).toBeGreaterThanOrEqual(Math.max(0, Math.floor(l.box.y0) - 1));
        expect(ink!.y1, `${l.id} "${l.text}" bottom`).toBeLessThanOrEqual(Math.min(height, Math.ceil(l.box.y1) + 1));
      }
    }
  }, 120_000);
});

describe.skipIf(rsvg)('timeline rendered to PNG', () => {
  it('skipped: rsvg-convert is not installed (Debian: librsvg2-bin; scripts/ensure-deps.sh installs it)', () => {
    expect(rsvg).toBe(false);
  });
});
