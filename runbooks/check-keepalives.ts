/**
 * check-keepalives: find hosts where an idle TCP connection could be dropped by a router without
 * either end noticing (seed 001: a 900 s outage), and fix them with -e fix=true.
 *
 * - PostgreSQL tcp_keepalives_idle 0 means the kernel's tcp_keepalive_time (7200 s by default);
 * - sshd ClientAliveInterval 0 leaves only TCPKeepAlive, at the same kernel default;
 * - the client side (libpq, ssh from this host) uses the kernel default of this host's netns.
 * The kernel goes last: fixed first, its shorter default would make PostgreSQL's and sshd's 0
 * look fine, and they would keep depending on a sysctl that a reinstall resets.
 * `--check` only reports (exit 7 when something is flagged, 0 when quiet); a run without fix=true
 * refuses to change anything and names the findings.
 */
import { blocked, change, defineRunbook, noop, param, stepsFor } from '../src/index.js';
import type { ParamsOf } from '../src/index.js';
import { fileContent } from '../src/index.js';
import { keepaliveFact, type KeepaliveFacts } from '../src/modules/keepalives/index.js';
import { atomicWrite, fileDiff } from '../src/index.js';
import {
  SSHD_CONFIG,
  SYSCTL_FILE,
  byComponent,
  keepaliveFindings,
  pgFixCommand,
  renderSysctl,
  sshdConfigWith,
  sshdLines,
  sshdReload,
  targetProblems,
  type KeepaliveTargets,
} from '../src/modules/keepalives/index.js';
import { sh } from '../src/index.js';

const params = {
  fix: param.boolean({ description: 'fix what is flagged (without it a run only reports, and refuses)', default: false }),
  maxIdle: param.number({ description: 'longest acceptable idle seconds before the first keepalive (below any router idle timeout)', default: 300 }),
  idle: param.number({ description: 'idle seconds a fix sets (PostgreSQL, sshd ClientAliveInterval, kernel)', default: 60 }),
  interval: param.number({ description: 'seconds between keepalive probes a fix sets', default: 10 }),
  count: param.number({ description: 'unanswered probes before the connection is dropped', default: 6 }),
};
type P = ParamsOf<typeof params>;
const { step } = stepsFor<P>();
const targets = (p: P): KeepaliveTargets => ({ maxIdle: p.maxIdle, idle: p.idle, interval: p.interval, count: p.count });

export default defineRunbook({
  id: 'check-keepalives',
  description: 'Report (and with fix=true, fix) settings that let idle connections be dropped silently: PostgreSQL, sshd, kernel',
  params,
  validate: (p) => targetProblems(targets(p)),
  steps: [
    step<{ k: KeepaliveFacts }>({
      id: 'keepalive-findings',
      title: 'Idle connections are probed before a router drops them',
      become: true,
      gather: () => ({ k: keepaliveFact }),
      plan: (f, ctx) => {
        const findings = keepaliveFindings(f.k, targets(ctx.params));
        if (findings.length === 0) return noop(`idle connections are probed within ${ctx.params.maxIdle} s`);
        const list = findings.map((x) => x.message).join('; ');
        if (ctx.params.fix || ctx.checkMode) return noop(`${findings.length} finding(s): ${list}`);
        return blocked(`${list}. A router that drops idle connections sooner cuts them without either end noticing. Fix with -e fix=true, or only report with --check`);
      },
    }),
    step<{ k: KeepaliveFacts }>({
      id: 'keepalive-postgresql',
      title: 'PostgreSQL tcp_keepalives_*',
      become: true,
      gather: () => ({ k: keepaliveFact }),
      plan: (f, ctx) => {
        if (!f.k.pg) return noop('no PostgreSQL answering on this host');
        const finding = byComponent(keepaliveFindings(f.k, targets(ctx.params)), 'postgresql');
        if (!finding) return noop(`tcp_keepalives_idle=${f.k.pg.idle}`);
        return change(`${finding.message} → ALTER SYSTEM + reload`, [pgFixCommand(targets(ctx.params))]);
      },
      // The reload is a signal: poll until new sessions see the values.
      verify: {
        converge: false,
        assertions: () => [
          {
            name: 'PostgreSQL runs with the new keepalives',
            intervalMs: 200,
            timeoutMs: 10_000,
            check: async (actx) => byComponent(keepaliveFindings(await actx.read(keepaliveFact), targets(actx.params)), 'postgresql')?.message ?? true,
          },
        ],
      },
    }),
    step<{ k: KeepaliveFacts; config: string | null }>({
      id: 'keepalive-sshd',
      title: 'sshd ClientAliveInterval',
      become: true,
      gather: () => ({ k: keepaliveFact, config: fileContent(SSHD_CONFIG, true) }),
      plan: (f, ctx) => {
        if (!f.k.sshd) return noop('no sshd on this host');
        const finding = byComponent(keepaliveFindings(f.k, targets(ctx.params)), 'sshd');
        if (!finding) return noop(`ClientAliveInterval ${f.k.sshd.clientAliveInterval}`);
        if (f.config === null) return blocked(`${SSHD_CONFIG} does not exist, yet sshd -T answers: fix the sshd config location by hand`);
        const next = sshdConfigWith(f.config, targets(ctx.params));
        if (next === f.config) return blocked(`${finding.message}, although ${SSHD_CONFIG} already says so: an Include or Match earlier in the file overrides it`);
        const write = atomicWrite(SSHD_CONFIG, next, { existing: true, validate: (file) => sh`sshd -t -f ${file}` });
        return change(`${finding.message} → ClientAliveInterval ${ctx.params.idle}`, [write, ...sshdReload(f.k.init, f.k.sshd.pid).slice(1)], fileDiff(SSHD_CONFIG, f.config, next));
      },
    }),
    step<{ k: KeepaliveFacts }>({
      id: 'keepalive-kernel',
      title: 'Kernel keepalive defaults (this host network namespace)',
      become: true,
      gather: () => ({ k: keepaliveFact }),
      plan: (f, ctx) => {
        const finding = byComponent(keepaliveFindings(f.k, targets(ctx.params)), 'kernel');
        if (!finding) return noop(`net.ipv4.tcp_keepalive_time=${f.k.kernel.time}`);
        const content = renderSysctl(targets(ctx.params));
        return change(`${finding.message} → ${ctx.params.idle} s (${SYSCTL_FILE})`, [atomicWrite(SYSCTL_FILE, content, { mode: '0644' }), sh`sysctl -p ${SYSCTL_FILE}`]);
      },
    }),
  ],
});
