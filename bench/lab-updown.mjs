#!/usr/bin/env node
// Lab up and down times, median of 3 (goals on a 2-core machine: up < 15 s, down < 5 s).
// Uses its own lab name and subnet, so a lab someone keeps up is never touched.
// Usage: node bench/lab-updown.mjs [--hosts LIST|N] [--layout debian|rhel] [--runs 3]
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const { values } = parseArgs({
  options: { hosts: { type: 'string' }, layout: { type: 'string', default: 'debian' }, runs: { type: 'string', default: '3' } },
});
const root = fileURLToPath(new URL('..', import.meta.url));
const name = 'rbbench';
const up = ['lab', 'up', '--name', name, '--subnet', '10.231.249.0/24', '--layout', values.layout, ...(values.hosts ? ['--hosts', values.hosts] : [])];
const down = ['lab', 'down', '--name', name];

function timed(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['bin/runbook.js', ...args], { cwd: root, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    spawnSync(process.execPath, ['bin/runbook.js', ...down], { cwd: root });
    throw new Error(`runbook ${args.join(' ')}: exit ${r.status}`);
  }
  return s;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

timed(down); // a leftover from an interrupted run
const ups = [];
const downs = [];
for (let i = 0; i < Number(values.runs); i++) {
  ups.push(timed(up));
  downs.push(timed(down));
}
const fmt = (xs) => xs.map((x) => x.toFixed(2)).join(' ');
const [u, d] = [median(ups), median(downs)];
console.log(`lab (${values.hosts ?? 'pg1=db,pg2=db,nfs1=nfs'}, ${values.layout}) up:   median ${u.toFixed(2)} s  [${fmt(ups)}]  goal < 15 s  ${u < 15 ? 'ok' : 'MISSED'}`);
console.log(`lab (${values.hosts ?? 'pg1=db,pg2=db,nfs1=nfs'}, ${values.layout}) down: median ${d.toFixed(2)} s  [${fmt(downs)}]  goal < 5 s   ${d < 5 ? 'ok' : 'MISSED'}`);
process.exitCode = u < 15 && d < 5 ? 0 : 1;
