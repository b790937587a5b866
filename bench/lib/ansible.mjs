// ansible-playbook as its users tune it for speed: pipelining, ControlPersist, forks ≥ hosts, no
// interpreter discovery round trip. Host key checking stays on (the lab inventory passes
// UserKnownHostsFile=<lab known_hosts> and StrictHostKeyChecking=yes in ansible_ssh_common_args).
// Each run gets a fresh ControlPath dir, so it pays for its connections like runbook does, and its
// master processes are told to exit afterwards (they would otherwise linger for ControlPersist).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { RunFailed, mustRun } from './measure.mjs';

/** `killAfterMs`: fault injection for the smoke test (the run is killed, as a loaded machine's OOM killer would). */
export async function ansiblePlaybook({ playbook, inventory, limit, forks, killAfterMs }) {
  const cp = mkdtempSync(join(tmpdir(), 'rbbench-cp-'));
  try {
    const env = {
      ANSIBLE_PIPELINING: 'True',
      ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=60s',
      ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
      ANSIBLE_FORKS: String(forks),
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: 'False',
    };
    const argv = ['ansible-playbook', '-i', inventory, '-l', limit, playbook];
    const r = await mustRun('ansible-playbook', argv, { env, ...(killAfterMs ? { timeoutMs: killAfterMs } : {}) });
    // a converged re-run: every host ok, nothing changed or failed
    const recap = [...r.stdout.matchAll(/^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)];
    const bad = recap.filter((m) => m[3] !== '0' || m[4] !== '0' || m[5] !== '0');
    if (recap.length === 0 || bad.length) throw new RunFailed('ansible-playbook', argv, r, 'not a clean no-op run (its recap shows changes, failures or unreachable hosts)');
    return r;
  } finally {
    for (const sock of readdirSync(cp)) spawnSync('ssh', ['-O', 'exit', '-o', `ControlPath=${join(cp, sock)}`, 'bench'], { stdio: 'ignore' });
    rmSync(cp, { recursive: true, force: true });
  }
}

/** The runbook step ids a playbook's tasks stand for: task names are "<step-id>: title". */
export function playbookStepIds(playbook) {
  const plays = parse(readFileSync(playbook, 'utf8'));
  return plays.flatMap((p) => p.tasks ?? []).map((t) => /^([a-z0-9-]+):/.exec(t.name ?? '')?.[1]).filter(Boolean);
}
