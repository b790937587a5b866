/** The runbook commands: run, plan, list, describe. Thin: parse flags, call the engine, return. */
import type { Command as Program } from 'commander';
import { BadInputError, ExitCode } from '../../errors.js';
import { maskSecrets } from '../../shell/secret.js';
import { collect, formatHostList, hostsOptions, limitPattern, type HostsFlags } from '../options.js';

interface RunFlags extends HostsFlags {
  extraVars: string[];
  secret: string[];
  check?: boolean;
  diff?: boolean;
  yes?: boolean;
  approve: string[];
  step?: boolean;
  report: string[];
  resume?: string;
  tags?: string;
  skipTags?: string;
  breakLock?: string;
  maxOutput?: string;
}

function maxOutputMb(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new BadInputError(`--max-output ${v}: a number of megabytes > 0`);
  return n;
}

const list = (s?: string) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : []);

function common(cmd: Program): Program {
  return hostsOptions(cmd)
    .option('-e, --extra-vars <vars>', "params as Ansible takes them: 'a=1 b=2', JSON, or @file.yml (repeatable)", collect, [])
    .option('--secret <NAME=env:VAR|NAME=file:PATH>', 'a secret param (repeatable)', collect, [])
    .option('--tags <tags>', 'only steps with one of these tags (comma-separated)')
    .option('--skip-tags <tags>', 'skip steps with one of these tags')
    .option('--diff', 'show file diffs')
    .option('--max-output <MB>', 'output kept per remote command and stream; the rest is cut with a note (default 8)');
}

/** The flags the engine's prepare() takes, from either command's flags. */
async function prepareOptions(f: RunFlags, check: boolean) {
  const [{ vaultKeyring }, { connectionOverrides }] = await Promise.all([import('../../inventory/vault-passwords.js'), import('../options.js')]);
  const limit = limitPattern(f.limit);
  return {
    inventory: f.inventory,
    ...(limit ? { limit } : {}),
    extraVars: f.extraVars,
    secrets: f.secret,
    check,
    ...(f.knownHosts ? { knownHosts: f.knownHosts } : {}),
    overrides: connectionOverrides(f),
    loadOptions: { vault: await vaultKeyring(f) },
    verbose: f.verbose,
  };
}

/** --list-hosts: the hosts the runbook would run on, then stop (nothing is connected). */
async function listHosts(ref: string, f: RunFlags): Promise<void> {
  const [{ loadRunbook }, inv, { vaultKeyring }] = await Promise.all([
    import('../../engine/loader.js'),
    import('../../inventory/index.js'),
    import('../../inventory/vault-passwords.js'),
  ]);
  const { def } = await loadRunbook(ref);
  const inventory = await inv.loadInventory(f.inventory, { vault: await vaultKeyring(f) });
  const pattern = limitPattern(f.limit) ?? def.hosts ?? 'all';
  process.stdout.write(formatHostList(inv.selectHosts(inventory, pattern), pattern));
}

export function registerRunbookCommands(program: Program): void {
  common(
    program
      .command('run')
      .description('Check, confirm, apply and verify a runbook (a built-in id or a .ts/.js file)')
      .argument('<runbook>', 'built-in runbook id or path to a .ts/.js runbook'),
  )
    .option('--check', 'gather and plan only; exit 7 when changes are pending')
    .option('-y, --yes', 'approve every confirmation (needed for destructive steps without a terminal)')
    .option('--approve <step-id>', 'approve one destructive step (repeatable)', collect, [])
    .option('--step', 'ask before every changing step')
    .option('--report <kind=path>', 'write a report: json=PATH or junit=PATH (repeatable)', collect, [])
    .option('--resume <run-id|last>', 'continue an interrupted run from its journal')
    .option('--break-lock <run-id>', "remove a dead run's cluster lock (named in the refusal), then run")
    .action(async (ref: string, f: RunFlags) => {
      if (f.listHosts) return listHosts(ref, f);
      const { runRunbook } = await import('../../engine/run.js');
      process.exitCode = await runRunbook(
        ref,
        {
          ...(await prepareOptions(f, Boolean(f.check))),
          diff: Boolean(f.diff),
          yes: Boolean(f.yes),
          approve: f.approve,
          step: Boolean(f.step),
          ...(f.forks !== undefined ? { forks: f.forks } : {}),
          reports: f.report,
          ...(f.resume ? { resume: f.resume } : {}),
          tags: list(f.tags),
          skipTags: list(f.skipTags),
          ...(f.breakLock ? { breakLock: f.breakLock } : {}),
          ...(f.maxOutput !== undefined ? { maxOutputMb: maxOutputMb(f.maxOutput) } : {}),
        },
        async (interactive) => {
          if (interactive) return (await import('../../ui/listr-ui.js')).createListrUi();
          return new (await import('../../ui/plain-log.js')).PlainLog();
        },
      );
    });

  common(
    program
      .command('plan')
      .description('Per host, the exact commands each step would run (masked), from facts read now')
      .argument('<runbook>', 'built-in runbook id or path'),
  )
    .option('--report <json=path>', 'also write the plan as JSON (per host, per step: mark, message, actions)', collect, [])
    .action(async (ref: string, f: RunFlags) => {
    if (f.listHosts) return listHosts(ref, f);
    const [{ prepare, parseReportArg }, { planHosts, formatPlan, planJson }, { HostPool, Interrupt }, { writeReportFile }] = await Promise.all([
      import('../../engine/run.js'),
      import('../../engine/plan.js'),
      import('../../engine/context.js'),
      import('../../report/json.js'),
    ]);
    const reports = f.report.map(parseReportArg);
    if (reports.some((r) => r.kind !== 'json')) throw new BadInputError('plan --report: only json=PATH');
    const prep = await prepare(ref, await prepareOptions(f, true));
    const interrupt = new Interrupt();
    const pool = new HostPool(prep.connect, interrupt);
    try {
      const plans = await planHosts(
        {
          run: prep.run,
          pool,
          interrupt,
          state: new Map(),
          hostByName: prep.hostByName,
          options: { checkMode: true, diff: Boolean(f.diff), forks: f.forks ?? Math.max(1, prep.run.hosts.length), stepMode: false, approvals: { all: false, steps: new Set() }, tags: list(f.tags), skipTags: list(f.skipTags) },
        },
        prep.loaded.def,
      );
      process.stdout.write(formatPlan(plans, Boolean(f.diff)));
      for (const r of reports) writeReportFile(r.path, planJson(prep.loaded.def.id, plans));
      const marks = [...plans.values()].flat().map((r) => r.mark);
      process.exitCode = marks.includes('failed') ? ExitCode.stepFailed : marks.includes('blocked') ? ExitCode.blocked : ExitCode.ok;
    } finally {
      await prep.closeTransport(); // closes every connection the pool opened (closing twice waits on a dead socket)
    }
  });

  program
    .command('list')
    .description('The built-in runbooks: ids and descriptions')
    .action(async () => {
      const { listBuiltinIds, loadRunbook } = await import('../../engine/loader.js');
      for (const id of listBuiltinIds()) {
        try {
          const { def } = await loadRunbook(id);
          process.stdout.write(`${def.id.padEnd(28)} ${def.description}\n`);
        } catch (e) {
          process.stdout.write(`${id.padEnd(28)} (cannot load: ${maskSecrets((e as Error).message)})\n`);
        }
      }
    });

  program
    .command('describe')
    .description('Steps, params, destructive steps and docs of a runbook')
    .argument('<runbook>', 'built-in runbook id or path')
    .action(async (ref: string) => {
      const [{ loadRunbook }, { describeRunbook }] = await Promise.all([import('../../engine/loader.js'), import('../../engine/describe.js')]);
      process.stdout.write(describeRunbook(await loadRunbook(ref)));
    });
}
