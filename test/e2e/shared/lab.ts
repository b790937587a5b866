/**
 * The lab itself. Part 1 reads the labs global-setup.ts brought up (both layouts) through the
 * project's own SSH transport with host-key checking on. Part 2 builds a private lab (own name and
 * subnet) to crash and take down, so the shared labs are never disturbed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { labDown, labStatus, labUp, readState, type LabState } from '../../../src/lab/index.js';
import { renderInventory } from '../../../src/lab/inventory.js';
import { buildSpec, labTag } from '../../../src/lab/spec.js';
import { labPaths } from '../../../src/lab/state.js';
import { sh, type Command } from '../../../src/shell/index.js';
import { SshTransport } from '../../../src/transport/index.js';
import { inHost, labConnectionSpec, labHosts, labNames, testLab, type LabHostInfo, type LabLayout } from '../../support/lab.js';

// one transport per lab: connections are pooled by inventory name, and both labs have a pg1
const transports = new Map<string, SshTransport>();
afterAll(() => Promise.all([...transports.values()].map((t) => t.closeAll())));

async function ssh(host: LabHostInfo, command: Command, become: boolean | string = false) {
  let transport = transports.get(host.lab);
  if (!transport) transports.set(host.lab, (transport = new SshTransport({ sshConfigFile: '/nonexistent' })));
  const conn = await transport.connect(labConnectionSpec(host));
  return conn.exec(command, { become, check: true });
}

const layouts = (['debian', 'rhel'] as const).filter((l) => (l === 'debian' ? inject('labInventory') : inject('labRhelInventory')));

describe.each(layouts)('lab hosts (%s layout), over SSH with host-key checking', (layout: LabLayout) => {
  const hosts = () => labHosts(layout);

  it('each host has its own hostname and /etc/hostname', async () => {
    for (const host of hosts()) {
      const r = await ssh(host, sh`hostname; cat /etc/hostname`);
      expect(r.stdout.split('\n').slice(0, 2)).toEqual([host.name, host.name]);
    }
  });

  it('each host sees only its own processes, under its own init', async () => {
    for (const host of hosts()) {
      const init = await ssh(host, sh`xargs -0 echo < /proc/1/cmdline`, true);
      expect(init.stdout).toContain(join(labPaths(host.lab).hostDir(host.name), 'init.sh'));
      // one sshd listener per host: with a shared PID namespace every host would list them all
      const ps = await ssh(host, sh`ps -e -o args=`, true);
      expect(ps.stdout.split('\n').filter((args) => /^sshd: .*\[listener\]/.test(args))).toHaveLength(1);
      const postgres = await ssh(host, sh`pgrep -x postgres | wc -l`, true);
      if (host.role === 'db') expect(Number(postgres.stdout)).toBeGreaterThan(0);
      else expect(Number(postgres.stdout)).toBe(0);
    }
  });

  it('no route beyond the lab subnet, and only its own address', async () => {
    for (const host of hosts()) {
      const net = host.address.split('.').slice(0, 3).join('.');
      const routes = await ssh(host, sh`ip -4 route show table all | grep -v '^local\\|^broadcast' || true`);
      expect(routes.stdout.trim().split('\n')).toEqual([`${net}.0/24 dev eth0 proto kernel scope link src ${host.address}`]);
      const addrs = await ssh(host, sh`ip -4 -o addr show | awk '{print $4}'`);
      expect(addrs.stdout.trim().split('\n').sort()).toEqual([`${host.address}/24`, '127.0.0.1/8'].sort());
    }
  });

  it('ops is unprivileged and has passwordless sudo', async () => {
    for (const host of hosts()) {
      expect((await ssh(host, sh`id -un; id -u`)).stdout.trim().split('\n')).toEqual(['ops', expect.not.stringMatching(/^0$/)]);
      expect((await ssh(host, sh`sudo -n id -u`)).stdout.trim()).toBe('0');
      expect((await ssh(host, sh`id -u`, true)).stdout.trim()).toBe('0');
    }
  });

  it('PostgreSQL answers locally on each database host, in the layout asked for', async () => {
    const dbHosts = hosts().filter((h) => h.role === 'db');
    expect(dbHosts.length).toBeGreaterThan(0);
    for (const host of dbHosts) {
      const r = await ssh(host, sh`psql -XAtc 'show data_directory' -c 'select 6*7'`, 'postgres');
      const listen = await ssh(host, sh`psql -XAtc 'show listen_addresses'`, 'postgres');
      expect(listen.stdout.trim()).toBe('*');
      if (layout === 'debian') {
        expect(r.stdout.trim().split('\n')).toEqual(['/var/lib/postgresql/15/main', '42']);
        expect((await ssh(host, sh`pg_lsclusters -h`)).stdout).toMatch(/^15\s+main\s+5432\s+online/);
      } else {
        expect(r.stdout.trim().split('\n')).toEqual(['/var/lib/pgsql/15/data', '42']);
        const probe = await ssh(
          host,
          sh`command -v pg_lsclusters pg_ctlcluster || true; ls -d /etc/postgresql /var/lib/postgresql 2>&1 | grep -c 'No such' ; . /etc/os-release; echo $ID`,
        );
        expect(probe.stdout.trim().split('\n')).toEqual(['2', 'rhel']);
        expect((await ssh(host, sh`/usr/pgsql-15/bin/pg_ctl -D /var/lib/pgsql/15/data status`, 'postgres')).stdout).toContain('server is running');
      }
    }
  });

  it('the committed inventory is what the lab generates', () => {
    const committed = readFileSync(layout === 'debian' ? 'inventories/lab.yml' : 'inventories/lab-rhel.yml', 'utf8');
    expect(committed).toBe(renderInventory(buildSpec({ name: layout === 'debian' ? 'lab' : 'rhel' }, layout === 'debian' ? '10.231.0' : '10.231.1')));
  });
});

// ---------------------------------------------------------------------------------------------
describe('a private lab: up twice, crash recovery, down leaves nothing', () => {
  const { name, subnet } = testLab('rbtest', 10);
  const tag = labTag(name);
  let etcBefore: string;
  let first: LabState;

  beforeAll(async () => {
    expect(readState(name), `lab ${name} is up already: take it down first`).toBeUndefined();
    etcBefore = etcChecksum();
    first = (await labUp({ name, subnet, hosts: 't1=db,t2=plain' })).state;
  });
  afterAll(async () => {
    await labDown({ name }); // also when a test failed half-way
  });

  it('lab up on a lab that is up is a no-op', async () => {
    const again = await labUp({ name });
    expect(again.alreadyUp).toBe(true);
    expect(again.state.hosts).toEqual(first.hosts);
  });

  it('lab up after a crash (host inits killed, netns and veths left) cleans up and rebuilds', async () => {
    for (const h of Object.values(first.hosts)) process.kill(h.init.pid, 'SIGKILL');
    await waitUntil(async () => !(await labStatus({ name })).hosts.some((h) => h.running));
    expect((await listOf(['ip', 'netns', 'list'])).filter((n) => n.startsWith(`rb-${tag}-`))).toHaveLength(2);

    const rebuilt = await labUp({ name });
    expect(rebuilt.alreadyUp).toBe(false);
    expect(rebuilt.state.hosts.t1!.init.pid).not.toBe(first.hosts.t1!.init.pid);
    expect((await labStatus({ name })).up).toBe(true);
    const t1: LabHostInfo = { ...rebuilt.state.spec.hosts[0]!, lab: name, pid: rebuilt.state.hosts.t1!.init.pid };
    expect((await inHost(t1, `su -s /bin/sh postgres -c "psql -XAtc 'select 1'"`)).stdout.trim()).toBe('1');
    first = rebuilt.state;
  });

  it('lab down removes every process, netns, link, mount and the state; the real /etc never changed', async () => {
    const pids = Object.values(first.hosts).flatMap((h) => [h.init.pid, h.launcher?.pid ?? h.init.pid]);
    const { wasUp, ms } = await labDown({ name });
    expect(wasUp).toBe(true);
    expect(ms).toBeLessThan(5_000);

    expect((await listOf(['ip', 'netns', 'list'])).filter((n) => n.startsWith(`rb-${tag}-`))).toEqual([]);
    expect((await listOf(['ip', '-o', 'link', 'show'])).filter((l) => l.includes(` rb-${tag}`))).toEqual([]);
    const mounts = readFileSync('/proc/mounts', 'utf8');
    expect(mounts).not.toContain(`rb-${tag}-`);
    expect(mounts).not.toContain(labPaths(name).dir);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`) && !isZombie(pid), `pid ${pid}`).toBe(false);
    expect(processesMentioning(labPaths(name).dir)).toEqual([]);
    expect(existsSync(labPaths(name).dir)).toBe(false);

    expect(etcChecksum()).toBe(etcBefore);
    expect((await labDown({ name })).wasUp).toBe(false);
  });
});

// Refusing without root (exit 9) is unit-tested in test/unit/lab/spec.test.ts: a clone CI runs in
// may not be readable by another user, so that test fakes the uid instead of switching users.

// ---------------------------------------------------------------------------------------------

/** Content, mode and owner of everything under /etc. */
function etcChecksum(): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      const st = statSync(path, { throwIfNoEntry: false }) ?? { mode: 0, uid: 0, gid: 0 };
      hash.update(`${path} ${st.mode} ${st.uid} ${st.gid}\n`);
      if (entry.isSymbolicLink()) hash.update(readlinkSync(path));
      else if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) hash.update(readFileSync(path));
    }
  };
  walk('/etc');
  return hash.digest('hex');
}

function listOf(argv: string[]): Promise<string[]> {
  return new Promise((resolve, reject) =>
    execFile(argv[0]!, argv.slice(1), (error, stdout) => (error ? reject(error) : resolve(stdout.split('\n').filter(Boolean)))),
  );
}

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

function processesMentioning(text: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        return cmdline.includes(text) ? [`${pid}: ${cmdline}`] : [];
      } catch {
        return [];
      }
    });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
