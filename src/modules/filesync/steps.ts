/**
 * The steps of a file sync, shared by setup-file-sync, disable-file-sync, failover and failback.
 * Every step is per node and reads only its own host, so a direction change (failover, failback)
 * needs nothing from a node that is gone: each node keeps the peers' keys and host keys it needs.
 *
 * State between steps (ctx.state): SYNCS, the syncs this run manages on the host (their
 * definition and peers), and SOURCE, the node the sync must come from.
 */
import { createHash, randomBytes } from 'node:crypto';
import { blocked, change, fact, noop, onHost, perHost, stepsFor } from '../../engine/define.js';
import { execOn } from '../../engine/actions.js';
import type { ApplyContext, Assertion, Fact, FactMap, Operation, Plan, RunContext, StepContext, StepDef } from '../../engine/types.js';
import { directory, file, managedBlock } from '../../core/file-ops.js';
import { service, type ServiceArgs } from '../../core/service.js';
import { fileInfo } from '../../core/file-facts.js';
import { type Command, sh } from '../../shell/index.js';
import { type PgRole, pgRoleFact } from '../vip/facts.js';
import { type HostSync, type SyncRunState, hostKeyFact, hostSyncsFact, pubkeysFact, syncRunFact, syncToolsFact, type SyncTools } from './facts.js';
import {
  renderAuthorizedBlock,
  renderConf,
  renderCron,
  renderExclude,
  renderKnownHosts,
  renderPaths,
  renderPeers,
  renderScript,
  renderService,
  renderTimer,
} from './render.js';
import { ETC_DIR, SCRIPT_DIR, STATE_ROOT, UNIT_DIR, type PeerEntry, type SyncConf, type SyncDef, chooseSource, keyFile, pathId, syncFiles } from './spec.js';

export const SYNCS = 'filesync.syncs';
export const SOURCE = 'filesync.source';
export const TOOLS = 'filesync.tools';
const AUTHORIZED_KEYS = '/root/.ssh/authorized_keys';

export type Nodes<P> = (ctx: RunContext<P>) => string[];
const syncsOf = (ctx: StepContext<unknown>): HostSync[] => (ctx.state[SYNCS] as HostSync[] | undefined) ?? [];
const sourceOf = (ctx: StepContext<unknown>): string | undefined => ctx.state[SOURCE] as string | undefined;
const toolsOf = (ctx: StepContext<unknown>): SyncTools | undefined => ctx.state[TOOLS] as SyncTools | undefined;

/** Several operations as one step: facts side by side, plans joined (blocked wins, then change). */
export function allOf(ops: Array<[string, Operation<any>]>, none: string): Operation<Record<string, any>> {
  const facts: Record<string, Fact<unknown> | { onHost: string; fact: Fact<unknown> }> = {};
  for (const [k, op] of ops) for (const [fk, f] of Object.entries(op.facts as Record<string, never>)) facts[`${k}\u0000${fk}`] = f;
  return {
    facts: facts as FactMap<Record<string, any>>,
    plan: (all) => {
      if (ops.length === 0) return noop(none);
      const plans: Array<[string, Plan]> = ops.map(([k, op]) => {
        const mine: Record<string, unknown> = {};
        for (const [fk, v] of Object.entries(all)) if (fk.startsWith(`${k}\u0000`)) mine[fk.slice(k.length + 1)] = v;
        return [k, op.plan(mine)];
      });
      const b = plans.find(([, p]) => p.kind === 'blocked');
      if (b) return blocked(`${b[0]}: ${(b[1] as { reason: string }).reason}`);
      const changes = plans.filter(([, p]) => p.kind === 'change') as Array<[string, Extract<Plan, { kind: 'change' }>]>;
      if (changes.length === 0) return noop(plans.map(([k, p]) => `${k}: ${(p as { reason: string }).reason}`).join('; '));
      const diffs = changes.map(([, p]) => p.diff).filter(Boolean);
      return change(changes.map(([k, p]) => `${k}: ${p.summary}`).join('; '), changes.flatMap(([, p]) => p.commands), diffs.length ? diffs.join('\n') : undefined);
    },
  };
}

// ---------------------------------------------------------------- what every node needs

/** Tools present; remembered for the schedule steps. Blocks where a sync could not run. */
export function toolsStep<P>(id: string, nodes: Nodes<P>): StepDef<P, { t: SyncTools }> {
  return stepsFor<P>().step({
    id,
    title: 'rsync, rrsync, flock, ssh-keygen and a scheduler (systemd or cron) on every node',
    on: nodes,
    become: true,
    gather: () => ({ t: syncToolsFact }),
    plan: (f) => {
      const missing: string[] = (['rsync', 'rrsync', 'flock', 'sshKeygen'] as const).filter((k) => !f.t[k]).map((k) => (k === 'sshKeygen' ? 'ssh-keygen' : k));
      if (!f.t.systemd && !f.t.cron) missing.push('cron (no systemd here: install the cron package)');
      if (missing.length) return blocked(`missing: ${missing.join(', ')}`);
      return noop(`schedule by ${f.t.systemd ? 'a systemd timer' : `cron (${f.t.cron}, ${f.t.cronRunning ? 'running' : 'not running yet'})`}`);
    },
    remember: (f) => ({ [TOOLS]: f.t }),
  });
}

/** setup: the source from the servers' roles (or sync_source checked against them); remembers SYNCS and SOURCE. */
export function sourceStep<P>(id: string, nodes: Nodes<P>, def: (p: P) => SyncDef, explicit: (p: P) => string | undefined): StepDef<P, Record<string, PgRole>> {
  return stepsFor<P>().step({
    id,
    title: 'Sync source: the writable PostgreSQL node, read from the servers',
    on: nodes,
    become: true,
    gather: (ctx) => Object.fromEntries(nodes(ctx).map((n) => [n, onHost(n, pgRoleFact)])) as FactMap<Record<string, PgRole>>,
    plan: (roles, ctx) => {
      const c = chooseSource(roles, explicit(ctx.params));
      return 'error' in c ? blocked(c.error) : noop(`${c.source} → ${nodes(ctx).filter((n) => n !== c.source).join(', ')}: ${c.why}`);
    },
    remember: (roles, ctx) => {
      const c = chooseSource(roles, explicit(ctx.params));
      return 'source' in c ? { [SOURCE]: c.source, [SYNCS]: [{ conf: { ...def(ctx.params), source: '', sourceAddress: '' }, peers: [] }] } : {};
    },
  });
}

/** The directories and, per path, this node's own key (made on the node, never copied). */
export function keysStep<P>(id: string, nodes: Nodes<P>): StepDef<P, Record<string, any>> {
  return stepsFor<P>().step({
    id,
    title: "This node's pull keys (ed25519, one per synced path)",
    on: nodes,
    become: true,
    operation: (ctx) => {
      const ops: Array<[string, Operation<any>]> = [
        [ETC_DIR, directory({ path: ETC_DIR, mode: '0700', owner: 'root', group: 'root' })],
        [SCRIPT_DIR, directory({ path: SCRIPT_DIR, mode: '0755', owner: 'root', group: 'root' })],
      ];
      for (const s of syncsOf(ctx))
        for (const p of s.conf.paths) {
          const key = keyFile(s.conf.name, p);
          ops.push([
            `${s.conf.name} ${p}`,
            {
              facts: { info: fileInfo(`${key}.pub`) },
              plan: (f: { info: { exists: boolean } }) =>
                f.info.exists ? noop('key present') : change(`new key ${key}`, [sh`rm -f ${key} && ssh-keygen -q -t ed25519 -N '' -C ${`runbook-filesync-${s.conf.name}@${ctx.host.name}`} -f ${key}`]),
            },
          ]);
        }
      return allOf(ops, 'no sync');
    },
  });
}

/** Reads every node's host key and pull keys (setup only: all nodes are up) into SYNCS' peers. */
export function peersReadStep<P>(id: string, nodes: Nodes<P>): StepDef<P, Record<string, any>> {
  return stepsFor<P>().step({
    id,
    title: "Every node's host key and pull keys",
    on: nodes,
    become: true,
    gather: (ctx) => {
      const out: Record<string, unknown> = {};
      for (const n of nodes(ctx)) {
        out[`hk:${n}`] = onHost(n, hostKeyFact);
        for (const s of syncsOf(ctx)) out[`pk:${n}:${s.conf.name}`] = onHost(n, pubkeysFact(s.conf.name, s.conf.paths));
      }
      return out as FactMap<Record<string, any>>;
    },
    plan: (f, ctx) => {
      const noKey = nodes(ctx).filter((n) => !f[`hk:${n}`]);
      if (noKey.length) return blocked(`no /etc/ssh/ssh_host_ed25519_key.pub on ${noKey.join(', ')}`);
      return noop(`${nodes(ctx).length} nodes`);
    },
    remember: (f, ctx) => ({
      [SYNCS]: syncsOf(ctx).map((s) => ({
        conf: s.conf,
        peers: nodes(ctx).map((n): PeerEntry => ({ host: n, address: ctx.select(n)[0]?.address ?? n, hostKey: String(f[`hk:${n}`] ?? ''), keys: (f[`pk:${n}:${s.conf.name}`] ?? {}) as Record<string, string> })),
      })),
    }),
  });
}

/** The definition files every node holds: paths, excludes, peers, known_hosts, the script. */
export function definitionStep<P>(id: string, nodes: Nodes<P>): StepDef<P, Record<string, any>> {
  return stepsFor<P>().step({
    id,
    title: 'Sync definition on every node: paths, excludes, peers, known_hosts, pull script',
    on: nodes,
    become: true,
    operation: (ctx) => {
      const ops: Array<[string, Operation<any>]> = [];
      for (const s of syncsOf(ctx)) {
        const f = syncFiles(s.conf.name);
        const own = { mode: '0600', owner: 'root', group: 'root' };
        ops.push([f.paths, file({ path: f.paths, content: renderPaths(s.conf.paths), ...own })]);
        ops.push([f.exclude, file({ path: f.exclude, content: renderExclude(s.conf.exclude), ...own })]);
        if (s.peers.length) {
          ops.push([f.peers, file({ path: f.peers, content: renderPeers(s.peers), ...own })]);
          ops.push([f.knownHosts, file({ path: f.knownHosts, content: renderKnownHosts(s.peers), ...own })]);
        }
        ops.push([f.script, file({ path: f.script, content: renderScript(s.conf.name), mode: '0755', owner: 'root', group: 'root' })]);
      }
      return allOf(ops, 'no sync');
    },
  });
}

// ---------------------------------------------------------------- direction: source and targets

/** Each sync's run state on this node (status, kept files, the direction's epoch), by sync name. */
type RunFacts = { runs: Record<string, SyncRunState> };
function runFacts(ctx: StepContext<unknown>): FactMap<RunFacts> {
  return { runs: perHost(syncsOf(ctx), (s) => s.conf.name, (s) => syncRunFact(s.conf.name)) };
}

/** What a pull would change here (rsync --dry-run through the sync's own script), one line per file. */
function dryRunFact(name: string): Fact<string[]> {
  const script = syncFiles(name).script;
  return fact({
    name: `filesync.dry-run ${name}`,
    cache: false,
    command: sh`${script} --dry-run`,
    parse: (r) => {
      if (r.exitCode !== 0) throw new Error(`${script} --dry-run: exit ${r.exitCode}: ${r.stderr.trim() || r.stdout.trim()}`);
      return r.stdout.split('\n').filter((l) => /: [<>ch*.][fdLDS]/.test(l) && !/: \.d/.test(l));
    },
  });
}

/** failover / failback: the syncs defined on this node (read from its own conf files). */
export function findStep<P>(id: string, nodes: Nodes<P>, source: (ctx: StepContext<P>) => string | undefined): StepDef<P, { syncs: HostSync[]; t: SyncTools }> {
  return stepsFor<P>().step({
    id,
    title: 'File syncs defined on this node',
    on: nodes,
    become: true,
    gather: () => ({ syncs: hostSyncsFact(), t: syncToolsFact }),
    plan: (f) => noop(f.syncs.length ? f.syncs.map((s) => `${s.conf.name} (${s.conf.paths.join(', ')}; source now ${s.conf.source})`).join('; ') : 'no file sync here'),
    remember: (f, ctx) => ({ [SYNCS]: f.syncs, [SOURCE]: source(ctx), [TOOLS]: f.t }),
  });
}

function confFor(s: HostSync, source: string, ctx: StepContext<unknown>): SyncConf {
  const peer = s.peers.find((p) => p.host === source);
  return { ...s.conf, source, sourceAddress: peer?.address ?? ctx.select(source)[0]?.address ?? source };
}

/** The direction: the conf names the source; the source's role is checked on the source itself. */
export function directionSteps<P>(prefix: string, nodes: Nodes<P>, opts: { probe?: boolean } = {}): Array<StepDef<P, any>> {
  const { step } = stepsFor<P>();
  const notify = opts.probe ? [`${prefix}-probe`] : [];
  const has = (ctx: StepContext<P>): true | string => (syncsOf(ctx).length ? (sourceOf(ctx) ? true : 'no sync source decided') : 'no file sync here');
  const isSource = (ctx: StepContext<P>) => sourceOf(ctx) === ctx.host.name;
  return [
    step<{ role: PgRole }>({
      id: `${prefix}-source-writable`,
      title: 'The sync source is the writable PostgreSQL node (read on the source)',
      on: nodes,
      become: true,
      when: has,
      gather: () => ({ role: pgRoleFact }),
      plan: (f, ctx) => {
        const src = sourceOf(ctx)!;
        if (isSource(ctx)) return f.role === 'primary' ? noop(`${src} is writable: it is the source`) : blocked(`${src} is ${f.role}, not the writable primary: it cannot be the sync source`);
        return f.role === 'primary' ? blocked(`${ctx.host.name} is writable, yet ${src} was chosen as the source`) : noop(`${ctx.host.name} (${f.role}) pulls from ${src}`);
      },
    }),
    step({
      id: `${prefix}-conf`,
      title: 'Sync conf: the source this node pulls from',
      on: nodes,
      become: true,
      when: has,
      operation: (ctx) =>
        allOf(
          syncsOf(ctx).map((s) => [s.conf.name, file({ path: syncFiles(s.conf.name).conf, content: renderConf(confFor(s, sourceOf(ctx)!, ctx)), mode: '0600', owner: 'root', group: 'root' })]),
          'no sync',
        ),
      notify,
    }),
    step<RunFacts>({
      id: `${prefix}-new-direction`,
      title: 'Targets: a new direction starts a new manifest (files already here are not "written here")',
      on: nodes,
      become: true,
      when: (ctx) => (has(ctx) === true && isSource(ctx) ? 'the source' : has(ctx)),
      gather: runFacts,
      plan: (f, ctx) => {
        const cmds: Command[] = [];
        const what: string[] = [];
        for (const s of syncsOf(ctx)) {
          const addr = confFor(s, sourceOf(ctx)!, ctx).sourceAddress;
          if (f.runs[s.conf.name]!.epoch !== addr) {
            cmds.push(sh`${syncFiles(s.conf.name).script} --reset`);
            what.push(`${s.conf.name}: pull from ${sourceOf(ctx)} (${addr})`);
          }
        }
        return cmds.length ? change(`new direction: ${what.join('; ')}`, cmds) : noop('direction unchanged');
      },
    }),
    step({
      id: `${prefix}-authorized-keys`,
      title: "Source: the targets' keys in root's authorized_keys (rrsync -ro, from=, no pty, no forwarding); elsewhere none",
      on: nodes,
      become: true,
      when: has,
      operation: (ctx) =>
        allOf(
          syncsOf(ctx).map((s) => {
            const targets = s.peers.filter((p) => p.host !== sourceOf(ctx));
            const block = isSource(ctx) ? renderAuthorizedBlock(s.conf, targets) : '';
            return [s.conf.name, managedBlock({ path: AUTHORIZED_KEYS, marker: `filesync ${s.conf.name}`, block, state: block ? 'present' : 'absent', mode: '0600', owner: 'root', group: 'root' })];
          }),
          'no sync',
        ),
      notify,
    }),
    scheduleStep<P>(`${prefix}-schedule`, nodes, (ctx) => !isSource(ctx), notify),
    step({
      id: `${prefix}-cron-running`,
      title: 'cron running on the targets (hosts without systemd)',
      on: nodes,
      become: true,
      when: (ctx) => {
        const h = has(ctx);
        if (h !== true) return h;
        if (isSource(ctx)) return 'the source runs no pull';
        const t = toolsOf(ctx);
        return t?.systemd ? 'systemd timer' : t?.cron ? true : 'no cron';
      },
      operation: (ctx) => service(cronService(toolsOf(ctx)!.cron!)),
    }),
  ];
}

export function cronService(bin: string): ServiceArgs {
  const name = bin.replace(/.*\//, '');
  const status = sh`pgrep -x ${name} >/dev/null`;
  return {
    name,
    state: 'running',
    enabled: true,
    // cron daemonizes itself; wait (≤ 5 s) for it so the verify re-read finds it.
    commands: { start: sh`${bin} && for i in $(seq 50); do ${status} && break; sleep 0.1; done; ${status}`, stop: sh`pkill -x ${name}`, status },
  };
}

/** The schedule on the targets (cron file or systemd timer), none on the source. Removing it waits for a running pull. */
export function scheduleStep<P>(id: string, nodes: Nodes<P>, wanted: (ctx: StepContext<P>) => boolean, notify: string[] = []): StepDef<P, Record<string, any>> {
  return stepsFor<P>().step({
    id,
    title: 'Schedule: a systemd timer where systemd runs, cron otherwise; on targets only',
    on: nodes,
    become: true,
    when: (ctx) => (syncsOf(ctx).length ? true : 'no file sync here'),
    operation: (ctx) => {
      const systemd = toolsOf(ctx)?.systemd ?? false;
      const want = wanted(ctx);
      return allOf(
        syncsOf(ctx).map((s): [string, Operation<any>] => {
          const f = syncFiles(s.conf.name);
          const svc = `${UNIT_DIR}/${f.unit}.service`;
          const tmr = `${UNIT_DIR}/${f.unit}.timer`;
          const facts = { cron: fileInfo(f.cron), svc: fileInfo(svc), tmr: fileInfo(tmr), cronText: fact({ name: 'cron.text', command: sh`cat ${f.cron} 2>/dev/null; true`, parse: (r) => r.stdout }), tmrText: fact({ name: 'timer.text', command: sh`cat ${tmr} ${svc} 2>/dev/null; systemctl is-active ${`${f.unit}.timer`} 2>/dev/null; true`, parse: (r) => r.stdout }) };
          const waitLock = sh`flock -w 120 ${f.lock} true`;
          return [
            s.conf.name,
            {
              facts,
              plan: (x: { cron: { exists: boolean }; svc: { exists: boolean }; tmr: { exists: boolean }; cronText: string; tmrText: string }): Plan => {
                if (!want) {
                  const cmds: Command[] = [];
                  if (x.tmr.exists || x.svc.exists) cmds.push(sh`systemctl disable --now ${`${f.unit}.timer`} 2>/dev/null; rm -f ${tmr} ${svc} && systemctl daemon-reload`);
                  if (x.cron.exists) cmds.push(sh`rm -f ${f.cron}`);
                  return cmds.length ? change('remove the schedule, wait for a running pull', [...cmds, waitLock]) : noop('no schedule here');
                }
                if (systemd) {
                  const wantText = `${renderTimer(s.conf.name, s.conf.interval)}${renderService(s.conf.name)}active\n`;
                  if (x.tmrText === wantText && !x.cron.exists) return noop(`systemd timer ${f.unit}.timer every ${s.conf.interval} s`);
                  return change(`systemd timer ${f.unit}.timer every ${s.conf.interval} s`, [
                    ...(x.cron.exists ? [sh`rm -f ${f.cron}`] : []),
                    sh`printf %s ${renderService(s.conf.name)} > ${svc} && printf %s ${renderTimer(s.conf.name, s.conf.interval)} > ${tmr} && systemctl daemon-reload && systemctl enable --now ${`${f.unit}.timer`}`,
                  ]);
                }
                const text = renderCron(s.conf.name, s.conf.interval);
                if (x.cronText === text) return noop(`cron ${f.cron} every ${s.conf.interval} s`);
                return change(`cron ${f.cron} every ${s.conf.interval} s (no systemd here)`, [sh`printf %s ${text} > ${`${f.cron}.rb-tmp`} && chmod 0644 ${`${f.cron}.rb-tmp`} && mv -f ${`${f.cron}.rb-tmp`} ${f.cron}`]);
              },
            },
          ];
        }),
        'no sync',
      );
    },
    notify,
  });
}

// ---------------------------------------------------------------- verification and reports

/**
 * Handler after a change: on each target, a probe file with random bytes and mode 0640 is written
 * on the source; the verification (exit 4 when it does not hold) is that it arrives here, same
 * bytes and mode, within one interval (plus 65 s: cron starts a fresh schedule at the next minute).
 */
export function probeHandler<P>(id: string): StepDef<P, Record<string, never>> {
  const probePath = (c: SyncDef, host: string) => `${c.paths[0]!.replace(/\/+$/, '')}/.runbook-filesync-probe-${host}`;
  // Random per run, the same for every plan of it (the plan may be made more than once).
  const seed = randomBytes(16).toString('hex');
  const content = (host: string, name: string) => createHash('sha256').update(`${seed} ${host} ${name}`).digest('base64');
  return stepsFor<P>().step({
    id,
    title: 'A file written on the source arrives on this target within one interval, same bytes and mode',
    become: true,
    when: (ctx) => (ctx.checkMode ? 'writes a probe file: not in --check' : sourceOf(ctx) && sourceOf(ctx) !== ctx.host.name && syncsOf(ctx).length ? true : 'not a target'),
    plan: (_f, ctx) => {
      const src = sourceOf(ctx)!;
      return change(
        `probe ${syncsOf(ctx).map((s) => s.conf.name).join(', ')}: a file of random bytes, mode 0640, written on ${src} must arrive here`,
        syncsOf(ctx).map((s) => {
          const path = probePath(s.conf, ctx.host.name);
          return execOn(src, sh`mkdir -p ${path.replace(/\/[^/]*$/, '')} && umask 077 && printf %s ${content(ctx.host.name, s.conf.name)} > ${path} && chmod 0640 ${path}`);
        }),
      );
    },
    verify: {
      converge: false,
      assertions: (ctx) =>
        syncsOf(ctx).map((s) => {
          const path = probePath(s.conf, ctx.host.name);
          const want = createHash('sha256').update(content(ctx.host.name, s.conf.name), 'utf8').digest('hex');
          return {
            name: `${s.conf.name}: ${path} from ${sourceOf(ctx)} here within ${s.conf.interval + 65} s, sha256 ${want.slice(0, 12)}…, mode 0640`,
            intervalMs: 1000,
            timeoutMs: (s.conf.interval + 65) * 1000,
            check: async (a: ApplyContext<P>) => {
              const r = await a.exec(sh`if [ -f ${path} ]; then printf '%s %s' "$(sha256sum ${path} | cut -d' ' -f1)" "$(stat -c %a ${path})"; else echo absent; fi`);
              const seen = r.stdout.trim();
              if (seen !== `${want} 640`) return seen === 'absent' ? 'not here yet' : `here with sha256/mode ${seen}`;
              await a.execOn(sourceOf(a)!, sh`rm -f ${path}`, { become: true });
              await a.exec(sh`rm -f ${path}`);
              return true;
            },
          };
        }),
    },
  });
}

/** Targets: files written here that the sync keeps and reports instead of overwriting. */
export function keptStep<P>(id: string, nodes: Nodes<P>): StepDef<P, RunFacts> {
  return stepsFor<P>().step({
    id,
    title: 'Files written on a target: reported, kept, not overwritten (unless delete=true)',
    on: nodes,
    become: true,
    when: (ctx) => (syncsOf(ctx).length ? (sourceOf(ctx) === ctx.host.name ? 'the source' : true) : 'no file sync here'),
    gather: runFacts,
    plan: (f, ctx) =>
      noop(
        syncsOf(ctx)
          .map((s) => {
            const r = f.runs[s.conf.name]!;
            const last = r.status ? (r.status.ok ? 'last pull ok' : `last pull FAILED: ${r.status.detail}`) : 'no pull yet';
            return r.kept.length ? `${s.conf.name}: ${last}; WRITTEN HERE, kept and not overwritten: ${r.kept.join(', ')}` : `${s.conf.name}: ${last}; no file written here`;
          })
          .join('; '),
      ),
  });
}

// ---------------------------------------------------------------- failback: stop, catch up

/** Nodes still pulling from another node than `back` (the node the sync will come from again). */
const pullsFromOther = (ctx: StepContext<unknown>, back: string) => syncsOf(ctx).filter((s) => s.conf.source && s.conf.source !== back);

/** failback, before the switchover: no scheduled pull anywhere while the direction turns back. */
export function stopStep<P>(id: string, nodes: Nodes<P>, back: (ctx: RunContext<P>) => string): StepDef<P, Record<string, any>> {
  return scheduleStep<P>(id, nodes, (ctx) => pullsFromOther(ctx, back(ctx)).length === 0 && sourceOf(ctx) !== ctx.host.name);
}

/**
 * failback: `back` (the intended primary) pulls the changed files from the current source, once,
 * before (and again right after) the switchover; the plan lists them (rsync --dry-run).
 */
export function catchUpStep<P>(id: string, back: (ctx: RunContext<P>) => string): StepDef<P, { changed: Record<string, string[]> }> {
  return stepsFor<P>().step({
    id,
    title: 'Bring the primary-to-be up to date from the current source (changed files only)',
    on: (ctx) => [back(ctx)],
    become: true,
    when: (ctx) => (pullsFromOther(ctx, ctx.host.name).length ? true : 'it is the sync source already'),
    gather: (ctx) => ({ changed: perHost(pullsFromOther(ctx, ctx.host.name), (s) => s.conf.name, (s) => dryRunFact(s.conf.name)) }),
    plan: (f, ctx) => {
      const lists = pullsFromOther(ctx, ctx.host.name).map((s) => [s, f.changed[s.conf.name]!] as const);
      const n = lists.reduce((a, [, l]) => a + l.length, 0);
      if (n === 0) return noop(`up to date with ${lists.map(([s]) => s.conf.source).join(', ')}`);
      const listing = lists.flatMap(([s, l]) => l.map((x) => `${s.conf.name} ${x}`));
      return change(`pull ${n} changed file(s) from ${lists.map(([s]) => s.conf.source).join(', ')}: ${listing.slice(0, 50).join('; ')}${listing.length > 50 ? `; … ${listing.length - 50} more` : ''}`, lists.map(([s]) => sh`${syncFiles(s.conf.name).script}`));
    },
  });
}

// ---------------------------------------------------------------- disable

export function removeSteps<P>(prefix: string, nodes: Nodes<P>, names: (p: P) => string[]): Array<StepDef<P, any>> {
  const { step } = stepsFor<P>();
  return [
    step({
      id: `${prefix}-find`,
      title: 'The sync to remove',
      on: nodes,
      become: true,
      gather: (ctx) => ({ syncs: hostSyncsFact(names(ctx.params)), t: syncToolsFact }),
      plan: (f, ctx) => noop(f.syncs.length ? `${f.syncs.map((s) => s.conf.name).join(', ')} defined here` : `${names(ctx.params).join(', ')}: no conf here (removing leftovers only)`),
      remember: (f, ctx) => ({
        [SYNCS]: names(ctx.params).map((n) => f.syncs.find((s) => s.conf.name === n) ?? { conf: { name: n, paths: [], exclude: [], delete: false, interval: 60, source: '', sourceAddress: '' }, peers: [] }),
        [TOOLS]: f.t,
      }),
    }),
    scheduleStep<P>(`${prefix}-schedule-absent`, nodes, () => false),
    step({
      id: `${prefix}-authorized-keys-absent`,
      title: "The sync's entries in root's authorized_keys removed",
      on: nodes,
      become: true,
      operation: (ctx) => allOf(names(ctx.params).map((n) => [n, managedBlock({ path: AUTHORIZED_KEYS, marker: `filesync ${n}`, block: '', state: 'absent' })]), 'no sync'),
    }),
    step<{ files: Record<string, string[]> }>({
      id: `${prefix}-files-absent`,
      title: 'Keys, conf, peers, script, lock and state removed',
      on: nodes,
      become: true,
      gather: (ctx) => ({
        files: perHost(names(ctx.params), (n) => n, (n) => {
          const f = syncFiles(n);
          return fact({ name: `filesync.files ${n}`, command: sh`for p in ${ETC_DIR}/${n}.* ${f.script} ${f.lock} ${f.state}; do [ -e "$p" ] && echo "$p"; done; true`, parse: (r) => r.stdout.split('\n').filter(Boolean) });
        }),
      }),
      plan: (f) => {
        const all = Object.values(f.files).flat();
        return all.length ? change(`remove ${all.join(', ')}`, [sh`rm -rf -- ${all}`]) : noop('nothing left');
      },
    }),
  ];
}

export { STATE_ROOT, pathId };
export type { Assertion };
