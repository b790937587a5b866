// Wall time and peak memory of one child process (and its descendants), plus the statistics the
// bench prints. Memory comes from /proc, so nothing beyond Linux and Node is needed.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

// Sampling costs CPU on the machine being measured: cheap for one process, a tree walk less often.
const POLL_MS = 20;
const TREE_EVERY = 5;

function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // gone between listing and reading
  }
}

/** The process and all its descendants, through /proc/PID/task/TID/children (no full /proc scan). */
function tree(root) {
  const out = [root];
  for (let i = 0; i < out.length; i++) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${out[i]}/task`);
    } catch {}
    for (const tid of tids) {
      try {
        out.push(...readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
      } catch {}
    }
  }
  return out;
}

/**
 * Runs argv, samples memory every POLL_MS. Returns wall seconds, `peakMb` (the root process's own
 * high-water mark, VmHWM: exact for a single-process tool like runbook) and `treeMb` (the largest
 * sum of VmRSS over the whole process tree seen at one sample: what ansible's forks cost together).
 */
export function timed(argv, { env, cwd, timeoutMs = 300_000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let peakKb = 0;
    let treeKb = 0;
    let ticks = 0;
    const sample = () => {
      peakKb = Math.max(peakKb, statusKb(child.pid, 'VmHWM'));
      if (ticks++ % TREE_EVERY === 0) treeKb = Math.max(treeKb, tree(child.pid).reduce((sum, pid) => sum + statusKb(pid, 'VmRSS'), 0));
    };
    const poller = setInterval(sample, POLL_MS);
    const killer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (e) => {
      clearInterval(poller);
      clearTimeout(killer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearInterval(poller);
      clearTimeout(killer);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      resolve({ s, code, signal, stdout, stderr, peakMb: peakKb / 1024, treeMb: Math.max(treeKb, peakKb) / 1024 });
    });
  });
}

/** A run that failed: its exit, argv and whole output, for the log a retry keeps. */
export class RunFailed extends Error {
  constructor(label, argv, r, why) {
    const tail = (r.stdout + r.stderr).trim().split('\n').slice(-25).join('\n');
    super(`${label}: ${why ?? `exit ${r.code ?? r.signal}`}\n$ ${argv.join(' ')}\n${tail}`);
    this.summary = `${label}: ${why ?? `exit ${r.code ?? r.signal}`}`;
    this.seconds = r.s;
    this.log = `$ ${argv.join(' ')}\n${why ?? `exit ${r.code ?? r.signal}`} after ${r.s.toFixed(1)} s\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n`;
  }
}

/** A timed no-op run that changed something: it measured the wrong thing, so the bench stops. */
export class NotNoop extends Error {}

/** Like timed(), but a non-zero exit is a RunFailed carrying the tool's output. */
export async function mustRun(label, argv, opts) {
  const r = await timed(argv, opts);
  if (r.code !== 0) throw new RunFailed(label, argv, r);
  return r;
}

/**
 * A peer's run on a machine that may be loaded (seen: ansible-playbook exiting 2 at 50 hosts under a
 * load average of 10): a failure is retried once, and each failed attempt's output is kept in
 * `dir` (bench/out/failed/LABEL-N.log). Returns the run (with `retry: { reason, logs }` when it
 * passed on its second attempt), or `{ failed: reason, logs, seconds }` (how long the failed
 * attempts ran) when both attempts failed: the bench
 * then reports the reason instead of a figure. NotNoop is never retried.
 */
let failures = 0;
export async function retried(label, dir, fn) {
  const logs = [];
  const seconds = [];
  let firstReason;
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fn(attempt);
      // a run that passed on its retry says what the first attempt hit, and where its output is
      if (firstReason !== undefined && r && typeof r === 'object') r.retry = { reason: firstReason, logs };
      return r;
    } catch (e) {
      if (e instanceof NotNoop) throw e;
      mkdirSync(dir, { recursive: true });
      const log = join(dir, `${label.replace(/[^a-z0-9.-]+/gi, '-')}-${++failures}.log`);
      writeFileSync(log, e instanceof RunFailed ? e.log : `${e?.stack ?? e}\n`);
      logs.push(log);
      const reason = e instanceof RunFailed ? e.summary : String(e?.message ?? e).split('\n')[0];
      firstReason ??= reason;
      if (e instanceof RunFailed) seconds.push(Number(e.seconds.toFixed(3)));
      process.stderr.write(`[bench] ${label} failed (attempt ${attempt}): ${reason}; output kept in ${log}\n`);
      if (attempt >= 2) return { failed: reason, logs, seconds };
    }
  }
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** (max − min) / median: how far apart the repetitions were. */
export const spread = (xs) => (xs.length > 1 ? (Math.max(...xs) - Math.min(...xs)) / median(xs) : 0);

/** Medians of `reps` runs of fn (each returns {s, ...}); also keeps every sample. */
export async function repeat(reps, fn) {
  const runs = [];
  for (let i = 0; i < reps; i++) runs.push(await fn(i));
  const s = runs.map((r) => r.s);
  return { s: median(s), samples: s, spread: spread(s), runs };
}

export function machine() {
  const [l1, l5, l15] = loadavg();
  let cpus = 0;
  try {
    cpus = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0;
  } catch {}
  return { nproc: cpus, loadavg: [l1, l5, l15].map((x) => Number(x.toFixed(2))), node: process.version };
}
