/**
 * A host that never answered in this run is not asked again within NEVER_ANSWERED_RETRY_MS after
 * its connect timed out; a host that answered once is (its connection died, a wait reconnects).
 * The peers are TCP servers on loopback: one that accepts and never speaks SSH (a handshake
 * timeout, as a cut-off host whose port still accepts), one that closes at once, and one that does
 * not answer a SYN at all (a stopped process's listen queue, full: the kernel drops new SYNs, as
 * for a host behind a blackhole route).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnreachableError } from '../../../src/errors.js';
import type { ConnectionSpec } from '../../../src/inventory/types.js';
import { Secret } from '../../../src/shell/secret.js';
import { NEVER_ANSWERED_RETRY_MS, SshTransport } from '../../../src/transport/ssh.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-never-answered-'));
const sshConfig = join(dir, 'ssh_config');
writeFileSync(sshConfig, '');

function listen(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number; accepted: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    onSocket(s);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, accepted: () => n })));
}

// A password, so that auth planning has a method and the connect goes as far as the network.
const spec = (name: string, port: number): ConnectionSpec => ({ name, address: '127.0.0.1', port, user: 'nobody', password: new Secret('unused', 'password'), become: false, knownHostsFile: join(dir, 'known_hosts') });

async function failure(p: Promise<unknown>): Promise<UnreachableError> {
  const e = await p.then(() => undefined, (error: unknown) => error);
  expect(e).toBeInstanceOf(UnreachableError);
  return e as UnreachableError;
}

describe('connect retries of a host that never answered', () => {
  const open: Socket[] = [];
  let silent: Awaited<ReturnType<typeof listen>>;
  let closing: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    silent = await listen((s) => open.push(s)); // accepts, says nothing: no SSH handshake
    closing = await listen((s) => s.destroy());
  });
  afterAll(() => {
    for (const s of open) s.destroy();
    silent.server.close();
    closing.server.close();
  });

  it('a handshake timeout is remembered: the next connect fails at once, naming the first attempt', async () => {
    const t = new SshTransport({ connectTimeoutMs: 300, sshConfigFile: sshConfig });
    const first = await failure(t.connect(spec('cut', silent.port)));
    expect(first.reason).toBe('connect timeout (no SSH handshake)');
    const started = Date.now();
    const second = await failure(t.connect(spec('cut', silent.port)));
    expect(Date.now() - started).toBeLessThan(200);
    expect(second.reason).toMatch(/^connect timeout \(no SSH handshake\) \(\d+ s ago in this run; not tried again within 30 s\)$/);
    expect(silent.accepted()).toBe(1); // the second connect never reached the host
    expect(NEVER_ANSWERED_RETRY_MS).toBe(30_000);
    await t.closeAll();
  });

  it('another failure (connection closed) is tried again every time', async () => {
    const t = new SshTransport({ connectTimeoutMs: 300, sshConfigFile: sshConfig });
    await failure(t.connect(spec('closes', closing.port)));
    await failure(t.connect(spec('closes', closing.port)));
    expect(closing.accepted()).toBe(2);
    await t.closeAll();
  });

  it('a port that never answers TCP is unreachable after the TCP timeout, not the handshake budget, and remembered', async () => {
    const { port, child, fill } = await silentTcpPort();
    try {
      const t = new SshTransport({ connectTimeoutMs: 5_000, tcpConnectTimeoutMs: 400, sshConfigFile: sshConfig });
      const started = Date.now();
      const first = await failure(t.connect(spec('no-syn-ack', port)));
      const took = Date.now() - started;
      expect(first.reason).toBe('connect timeout (no TCP answer in 0.4 s)');
      expect(took).toBeGreaterThanOrEqual(400);
      expect(took).toBeLessThan(5_000);
      const second = await failure(t.connect(spec('no-syn-ack', port)));
      expect(second.reason).toMatch(/^connect timeout \(no TCP answer in 0\.4 s\) \(\d+ s ago in this run; not tried again within 30 s\)$/);
      await t.closeAll();
    } finally {
      for (const s of fill) s.destroy();
      child.kill('SIGKILL');
    }
  });
});

/** A listening port whose owner is stopped with a full accept queue: new SYNs get no answer. */
async function silentTcpPort(): Promise<{ port: number; child: ChildProcess; fill: Socket[] }> {
  const child = spawn(process.execPath, ['-e', "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => console.log(s.address().port));"], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  child.kill('SIGSTOP');
  const fill = Array.from({ length: 3 }, () => {
    const s = new Socket();
    s.on('error', () => undefined);
    s.connect(port, '127.0.0.1');
    return s;
  });
  await new Promise((r) => setTimeout(r, 300));
  return { port, child, fill };
}
