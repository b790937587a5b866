/**
 * Issue 12 point 1 on a 3-node lab of its own (testLab('hafence', 12): pg1, pg2, pg3, nfs1):
 * a partition both ways — the standbys cannot reach pg1's PostgreSQL (blackhole in their netns),
 * the controller cannot reach its SSH (blackhole in the root netns) — while a client inside pg1
 * keeps writing. failover without a fence_command refuses (exit 8) and promotes nothing; with the
 * lab's fence_command it fences pg1 and promotes; sampled every 100 ms, never two writable nodes.
 * Routes are removed in finally (a leftover root blackhole would cut the next lab on the subnet).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inHost } from '../support/lab.js';
import {
  DATA,
  type HaLab,
  WritableSampler,
  blackhole,
  clearBlackholes,
  eventually,
  haDown,
  haUp,
  inventoryText,
  runbook,
  setupCluster,
  twoWritable,
  value,
  writer,
} from './support-ha.js';

describe('failover under a partition both ways: fenced with evidence or refused', () => {
  let l: HaLab;

  beforeAll(async () => {
    l = await haUp('hafence', 12);
    const r = await setupCluster(l);
    expect(r.code, r.out).toBe(0);
    await value(l, 'pg1', 'CREATE TABLE IF NOT EXISTS w (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())');
  }, 900_000);

  afterAll(async () => {
    await haDown(l);
  });

  it('the lab inventory carries a fence_command that calls `runbook lab fence`', () => {
    expect(inventoryText(l)).toContain(`fence_command: '"\${RUNBOOK_CLI:-runbook}" lab fence --name ${l.name} "$1"'`);
  });

  it('refuses (exit 8) without a fence_command, fences with it and promotes; never two writable nodes', async () => {
    const client = writer(l, 'pg1', 'w');
    const sampler = new WritableSampler(l, ['pg1', 'pg2', 'pg3']);
    try {
      await eventually('writes on pg1', async () => Number(await value(l, 'pg1', 'SELECT count(*) FROM w')) > 5);
      await blackhole(l, 'pg2', 'pg1');
      await blackhole(l, 'pg3', 'pg1');
      await blackhole(l, 'root', 'pg1');

      // No fence_command (empty overrides the inventory var), only --yes: refused, nothing promoted.
      const refused = await runbook(l, 'failover', '--yes', '-e', 'fence_command=');
      expect(refused.code, refused.out).toBe(8);
      expect(refused.out).toMatch(/pg1 may still be a writable primary: SSH unreachable/);
      expect(refused.out).toContain('--approve promote-unfenced');
      expect(await value(l, 'pg2', 'SELECT pg_is_in_recovery()')).toBe('t');
      expect(await value(l, 'pg3', 'SELECT pg_is_in_recovery()')).toBe('t');
      // pg1 still takes writes: that is why refusing was right.
      const before = Number(await value(l, 'pg1', 'SELECT count(*) FROM w'));
      await eventually('pg1 still writable', async () => Number(await value(l, 'pg1', 'SELECT count(*) FROM w')) > before);

      // The lab's fence_command (inventory var): fenced with evidence, then promoted.
      const fo = await runbook(l, 'failover', '--yes', '--report', `json=/tmp/${l.name}-failover.json`);
      expect(fo.code, fo.out).toBe(0);
      expect(fo.out).toMatch(/\[local\] fence_command for pg1 \[evidence: fence-command\]: RUNBOOK_FENCE_HOST=pg1 /);
      // The JSON report carries the evidence, per peer.
      const report = JSON.parse(readFileSync(`/tmp/${l.name}-failover.json`, 'utf8')) as { results: Array<{ stepId: string; data?: { fence?: Record<string, { evidence: string | null; reason: string }> } }> };
      const fence = report.results.find((x) => x.stepId === 'fence-old-primary')!.data!.fence!;
      expect(fence.pg1).toMatchObject({ evidence: 'fence-command', reason: expect.stringContaining('port network') });
      expect(Object.values(fence).filter((f) => f.evidence === null)).toHaveLength(1); // the other standby follows
      const promoted = (await value(l, 'pg2', 'SELECT pg_is_in_recovery()')) === 'f' ? 'pg2' : 'pg3';
      const other = promoted === 'pg2' ? 'pg3' : 'pg2';
      expect(await value(l, promoted, 'SELECT pg_is_in_recovery()')).toBe('f');
      expect(await value(l, other, 'SELECT pg_is_in_recovery()')).toBe('t');
      // pg1: no postmaster, fenced (a start comes up read-only).
      expect((await inHost(l.host.pg1!, 'pgrep -x postgres || echo none')).stdout.trim()).toBe('none');
      expect((await inHost(l.host.pg1!, `test -f ${DATA}/standby.signal && echo fenced`)).stdout.trim()).toBe('fenced');
      // The other standby follows the new primary on its timeline.
      await eventually(`${other} streams from ${promoted}`, async () => (await value(l, promoted, 'SELECT application_name || state FROM pg_stat_replication')) === `${other}streaming`);
    } finally {
      await client.stop();
      const samples = await sampler.stop();
      await clearBlackholes(l);
      // every node was sampled, and at no moment were two writable
      expect(new Set(samples.map((s) => s.host)).size).toBe(3);
      expect(samples.filter((s) => s.host === 'pg1' && s.s === 'w').length).toBeGreaterThan(5);
      expect(twoWritable(samples)).toEqual([]);
    }
  }, 900_000);
});
