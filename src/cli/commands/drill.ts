/** `runbook drill`: rehearse failover and failback on a cluster and report what it cost. */
import type { Command as Program } from 'commander';
import { BadInputError } from '../../errors.js';
import { FAULTS, UNSAFE_FAULTS } from '../../drill/faults.js';
import type { FaultKind } from '../../drill/types.js';
import { parseWorkloadSpec } from '../../drill/workload.js';
import { collect, connectionOverrides, formatHostList, hostsArgs, hostsOptions, limitPattern, loadInventoryFrom, type HostsFlags } from '../options.js';

function wholeNumber(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new BadInputError(`${flag} ${text}: a whole number`);
  return Number(text);
}

export function registerDrill(program: Program): void {
  hostsOptions(program.command('drill'))
    .description('Rehearse failover and failback: inject a fault on the primary, measure downtime (RTO) and lost writes (RPO), restore the topology, write a report')
    .option('--fault <kind>', `fault: ${FAULTS.join(' | ')} (lag: replay paused on a standby, then the primary stopped; needs 3 nodes)`, 'stop')
    .option('--max-lost-writes <n>', 'loss budget for the fault: acknowledged writes (probe + pgbench) that may go missing; default 0 for stop, lag and the switchover, and for kill/partition under synchronous replication; otherwise reported only')
    .option('--workload <pgbench[:clients][@tps]>', 'run pgbench (default 4 clients; @TPS: pgbench --rate, transactions per second over all clients, default flat out) against the service address during the drill, beside the probe')
    .option('--fault-seconds <n>', 'how long a partition lasts: the host restores its link by itself this long after the cut, whatever happens to the drill', '60')
    .option('--lag-standby <host>', '--fault lag: the standby whose replay is paused (default: the first standby)')
    .option('--report-dir <dir>', 'where drill.md, drill.json, drill.junit.xml and drill-timeline.svg go', 'drill-report')
    .option('--compare <previous.json>', 'flag regressions against an earlier drill.json')
    .option('--group <name>', 'the cluster group of the inventory', 'postgres')
    .option('-e, --extra-vars <key=value|@file>', 'params for the failover and failback runbooks (repeatable)', collect, [])
    .option('--secret <NAME=env:VAR|NAME=file:PATH>', 'secrets for the runbooks (repeatable)', collect, [])
    .option('--yes', 'approve the fault and the runbooks unattended (CI)', false)
    .option('--dry-run', 'show what the drill would do and touch nothing', false)
    .action(async (opts: HostsFlags & {
      fault: string; reportDir: string; compare?: string; group: string;
      extraVars: string[]; secret: string[]; yes: boolean; dryRun: boolean;
      maxLostWrites?: string; workload?: string; faultSeconds: string; lagStandby?: string;
    }) => {
      if (opts.inventory.length === 0) throw new BadInputError('drill: give the cluster\'s inventory with -i PATH');
      const unsafe = UNSAFE_FAULTS[opts.fault];
      if (unsafe) throw new BadInputError(`--fault ${opts.fault}: ${unsafe}`);
      if (!FAULTS.includes(opts.fault as FaultKind)) throw new BadInputError(`--fault must be one of ${FAULTS.join(', ')}, not "${opts.fault}"`);
      // Its runbooks run as child processes without a terminal: a vault prompt cannot reach them.
      if (opts.askVaultPass) throw new BadInputError('drill: --ask-vault-pass cannot reach its runbooks; give --vault-password-file FILE or --vault-id ID@FILE');
      const workload = opts.workload === undefined ? undefined : parseWorkloadSpec(opts.workload);
      if (opts.workload !== undefined && !workload) throw new BadInputError(`--workload ${opts.workload}: expected pgbench, pgbench:CLIENTS (1-100), pgbench@TPS or pgbench:CLIENTS@TPS (TPS ≥ 1)`);
      const maxLostWrites = wholeNumber('--max-lost-writes', opts.maxLostWrites);
      const faultSeconds = wholeNumber('--fault-seconds', opts.faultSeconds)!;
      const { runDrill } = await import('../../drill/run-drill.js');
      const { vaultKeyring } = await import('../../inventory/vault-passwords.js');
      if (opts.listHosts) {
        const { selectHosts } = await import('../../inventory/index.js');
        const pattern = limitPattern(opts.limit) ?? opts.group;
        process.stdout.write(formatHostList(selectHosts(await loadInventoryFrom(opts), pattern), pattern));
        return;
      }
      const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
      const stamp = (): string => (interactive ? '' : `${new Date().toISOString()} `);
      const outcome = await runDrill({
        inventory: opts.inventory,
        fault: opts.fault as FaultKind,
        reportDir: opts.reportDir,
        ...(opts.compare ? { compare: opts.compare } : {}),
        clusterGroup: opts.group,
        overrides: connectionOverrides(opts),
        loadOptions: { vault: await vaultKeyring(opts) },
        hostsArgs: hostsArgs(opts),
        verbose: opts.verbose,
        extraVars: opts.extraVars,
        secrets: opts.secret,
        ...(opts.knownHosts ? { knownHosts: opts.knownHosts } : {}),
        yes: opts.yes,
        dryRun: opts.dryRun,
        faultSeconds,
        ...(maxLostWrites !== undefined ? { maxLostWrites } : {}),
        ...(workload ? { workload } : {}),
        ...(opts.lagStandby ? { lagStandby: opts.lagStandby } : {}),
        log: (line) => process.stdout.write(`${stamp()}${line}\n`),
        ...(interactive
          ? { confirm: async (message: string) => (await import('@inquirer/prompts')).confirm({ message, default: false }).catch(() => false) }
          : {}),
      });
      const r = outcome.report;
      if (r) {
        const ms = (v: number | null): string => (v === null ? 'n/a' : `${v} ms`);
        process.stdout.write(
          `\ndrill ${r.ok ? 'passed' : 'FAILED'}: RTO ${ms(r.rto_ms)}, switchover outage ${ms(r.switchover_outage_ms)}, lost writes ${r.rpo_lost_writes} (switchover ${r.switchover_lost_writes})\n`,
        );
        for (const b of r.budgets) process.stdout.write(`budget ${b.ok ? 'ok' : 'EXCEEDED'}: ${b.name}: ${b.detail}\n`);
        if (r.workload) process.stdout.write(`pgbench: ${r.workload.committed} acknowledged, ${r.workload.failed} failed, ${r.workload.aborted_clients} clients aborted; pgbench_history ${r.workload.history_rows ?? 'n/a'}\n`);
        if (r.ledger) process.stdout.write(`divergence ledger: ${r.ledger.committed} committed transactions discarded by the rejoin, ${r.ledger.never_committed} never committed (${r.ledger.nodes.map((n) => n.node).join(', ')})\n`);
        if (r.fence) process.stdout.write(`fence evidence: ${r.fence.verdict} (${r.fence.detail})\n`);
        if (r.failure) process.stdout.write(`failure: ${r.failure}\n`);
        for (const d of outcome.differences ?? []) if (d.regression) process.stdout.write(`regression: ${d.measure} ${d.previous} → ${d.current}\n`);
        process.stdout.write(`report: ${outcome.paths!.markdown} (also .json, .junit.xml, -timeline.svg)\n`);
      }
      process.exitCode = outcome.exitCode;
    });
}
