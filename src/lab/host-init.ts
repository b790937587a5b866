/**
 * Starting a host: its init script (PID 1 of a fresh PID namespace) mounts the host's files, sets
 * its hostname and address, makes its host key, starts sshd, and then stays, reaping orphans, until
 * SIGTERM (which it passes to every process of the host before it exits).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { quoteWord as q } from '../shell/quote.js';
import { hiddenPaths, hostMounts } from './host-fs.js';
import { HOST_ENV } from './local.js';
import { names, type LabHost, type LabSpec } from './spec.js';
import { isAlive, procRef, type HostState, type ProcRef } from './state.js';

export function initScript(spec: LabSpec, host: LabHost, hostDir: string): string {
  const mounts = hostMounts(spec, host, hostDir).map((m) =>
    m.kind === 'overlay'
      ? `mount -t overlay overlay -o ${q(`lowerdir=${m.target},upperdir=${m.upper},workdir=${m.work}`)} ${q(m.target)}`
      : `mkdir -p ${q(m.target)} && mount --bind ${q(m.source)} ${q(m.target)}`,
  );
  const whiteouts = hiddenPaths(spec, host, hostDir).map((p) => `[ -e ${q(p)} ] || mknod -m 000 ${q(p)} c 0 0`);
  return `#!/bin/sh
# runbook lab ${spec.name}: init of host ${host.name} (PID 1 of its own PID namespace)
set -eu
${whiteouts.join('\n')}
${mounts.join('\n')}
hostname ${q(host.name)}
ip link set lo up
ip addr add ${host.address}/24 dev eth0
ip link set eth0 up
# what systemd-tmpfiles would have made on a real server
mkdir -p /run/sshd /run/postgresql /run/lock /run/rpcbind /run/ganesha
chown postgres:postgres /run/postgresql && chmod 2775 /run/postgresql
ssh-keygen -q -t ed25519 -N '' -C root@${q(host.name)} -f /etc/ssh/ssh_host_ed25519_key
/usr/sbin/sshd -E /var/log/sshd.log
echo "init: ${host.name} up"
set +e
# PID 1 gets only the signals it handles: TERM stops the host, everything else is ignored.
trap 'kill -TERM -1 2>/dev/null; exit 0' TERM INT
# wait returns on every child's exit, which reaps orphans reparented to us
while :; do sleep 86400 & wait $!; done
`;
}

/** Starts the host's init in its netns with private mount/UTS/IPC/PID namespaces. */
export async function startHost(spec: LabSpec, host: LabHost, hostDir: string): Promise<HostState> {
  const script = join(hostDir, 'init.sh');
  writeFileSync(script, initScript(spec, host, hostDir), { mode: 0o755 });
  const log = openSync(join(hostDir, 'init.log'), 'w');
  // detached = setsid: the host is its own session, so the CLI's exit or Ctrl-C never reaches it
  const child = spawn(
    'ip',
    ['netns', 'exec', names.netns(spec, host), 'unshare', '--mount', '--propagation', 'private', '--uts', '--ipc', '--pid', '--fork', '--mount-proc', '/bin/sh', script],
    { detached: true, stdio: ['ignore', log, log], cwd: '/', env: HOST_ENV },
  );
  closeSync(log);
  child.unref();
  const launcherPid = child.pid;
  if (launcherPid === undefined) throw new Error(`lab: could not start ${host.name}`);
  const launcher = procRef(launcherPid);
  const init = await waitFor(
    () => {
      const forked = forkedChild(launcherPid);
      if (forked) return forked;
      if (!isAlive(launcher)) throw failure(host, hostDir, 'init exited');
      return undefined;
    },
    5_000,
    () => failure(host, hostDir, 'init did not start'),
  );
  return { init, launcher };
}

/** Waits until sshd accepts TCP on the host's address; fails early when the init has died. */
export async function waitForSshd(host: LabHost, hostDir: string, state: HostState, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      if (!isAlive(state.init)) throw failure(host, hostDir, 'init exited');
      return (await tcpOpen(host.address, 22)) || undefined;
    },
    timeoutMs,
    () => failure(host, hostDir, 'sshd did not start listening'),
  );
}

function forkedChild(pid: number): ProcRef | undefined {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return children.length ? procRef(Number(children[0])) : undefined;
  } catch {
    return undefined;
  }
}

/** An error naming the host, with the tail of its init log (where mount or sshd errors land). */
function failure(host: LabHost, hostDir: string, what: string): Error {
  const logFile = join(hostDir, 'init.log');
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-8).join('\n') : '';
  return new Error(`lab: host ${host.name}: ${what}${tail ? `; ${logFile}:\n${tail}` : ''}`);
}

export function tcpOpen(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 500 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw onTimeout();
    await new Promise((r) => setTimeout(r, 25));
  }
}
