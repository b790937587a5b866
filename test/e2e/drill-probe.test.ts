/**
 * The write probe against a real PostgreSQL on loopback (no lab needed): writes are acknowledged,
 * fail while the server is down, and come back by themselves when it returns.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveryTime } from '../../src/drill/measures.js';
import { WriteProbe } from '../../src/drill/probe.js';
import { secret } from '../../src/shell/secret.js';

const BIN = '/usr/lib/postgresql/15/bin';
const PASSWORD = 'probe-test-pw-5521';
let dir: string;
let port: number;

function asPostgres(cmd: string, args: string[]): string {
  return execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function pgCtl(action: 'start' | 'stop'): void {
  const opts = action === 'start' ? ['-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'log')] : ['-m', 'fast'];
  asPostgres(`${BIN}/pg_ctl`, ['-D', join(dir, 'data'), '-w', ...opts, action]);
}
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'probe-pg-'));
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'pw'), `${PASSWORD}\n`, { mode: 0o644 });
  port = await freePort();
  asPostgres(`${BIN}/initdb`, ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${join(dir, 'pw')}`]);
  pgCtl('start');
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres' });
  await c.connect();
  await c.query('CREATE TABLE probe (id bigint PRIMARY KEY, client_sent_at timestamptz, server_at timestamptz DEFAULT now())');
  await c.end();
}, 60_000);

afterAll(() => {
  try {
    pgCtl('stop');
  } catch {
    /* already stopped */
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('WriteProbe', () => {
  it('records acknowledged writes, failures while the server is down, and the recovery', async () => {
    const probe = new WriteProbe(
      { host: '127.0.0.1', port, user: 'postgres', password: secret(PASSWORD), database: 'postgres', table: 'probe' },
      { intervalMs: 50, timeoutMs: 500 },
    );
    probe.start();
    await new Promise((r) => setTimeout(r, 500));
    const faultAt = Date.now();
    pgCtl('stop');
    await new Promise((r) => setTimeout(r, 600));
    pgCtl('start');
    await new Promise((r) => setTimeout(r, 600));
    const samples = await probe.stop();

    const acked = samples.filter((s) => s.ackAt !== undefined);
    const failed = samples.filter((s) => s.error);
    expect(acked.length).toBeGreaterThan(5);
    expect(failed.length).toBeGreaterThan(0);
    const rto = recoveryTime(samples, faultAt);
    expect(rto).not.toBeNull();
    expect(rto!).toBeGreaterThanOrEqual(500);

    // Every acknowledged id is really in the table: the probe does not claim what it did not get.
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: PASSWORD, database: 'postgres' });
    await c.connect();
    const rows = await c.query<{ id: string }>('SELECT id FROM probe');
    await c.end();
    const stored = new Set(rows.rows.map((r) => Number(r.id)));
    for (const s of acked) expect(stored.has(s.id)).toBe(true);
  });
});
