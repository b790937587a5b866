import { describe, expect, it } from 'vitest';
import { classifyPort, decideFence, fenceCommandFor, fenceInvocation, type FenceInput } from '../../../src/modules/postgres/fence.js';
import { localCommand } from '../../../src/engine/actions.js';

const refused = { answers: false as const, error: 'psql: error: connection to server at "10.0.0.11", port 5432 failed: Connection refused' };
const timeout = { answers: false as const, error: 'psql: error: connection to server at "10.0.0.11", port 5432 failed: timeout expired' };
const auth = { answers: false as const, error: 'psql: error: connection to server at "10.0.0.11", port 5432 failed: FATAL:  password authentication failed for user "replicator"' };
const blackhole = { answers: false as const, error: 'psql: error: connection to server at "10.0.0.11", port 5432 failed: Invalid argument' };
const busy = { answers: false as const, error: 'FATAL:  sorry, too many clients already' };

const input = (over: Partial<FenceInput>): FenceInput => ({
  node: 'pg1',
  port: classifyPort(timeout),
  ssh: { reachable: false, reason: 'connect EINVAL' },
  hasFenceCommand: false,
  approvedUnfenced: false,
  ...over,
});

describe('fence evidence: only proof counts, never "does not answer"', () => {
  it('classifies what the candidate saw on the port', () => {
    expect(classifyPort(refused).state).toBe('refused');
    expect(classifyPort(timeout).state).toBe('timeout');
    expect(classifyPort(auth).state).toBe('auth');
    expect(classifyPort(blackhole).state).toBe('network');
    expect(classifyPort(busy).state).toBe('busy');
    expect(classifyPort({ answers: true, inRecovery: false }).state).toBe('writable');
    expect(classifyPort({ answers: true, inRecovery: true }).state).toBe('recovery');
  });

  it('timeout, auth failure, network error with SSH unreachable are unknown: refuse', () => {
    for (const v of [timeout, auth, blackhole, busy]) {
      const d = decideFence(input({ port: classifyPort(v) }));
      expect(d).toMatchObject({ action: 'refuse', evidence: 'unknown' });
      expect(d.reason).toContain('--approve promote-unfenced');
    }
  });

  it('SSH answers: fence over SSH, proven by pg_ctl status', () => {
    expect(decideFence(input({ ssh: { reachable: true, running: false, hasCluster: true, standbySignal: false } }))).toMatchObject({ action: 'ssh', evidence: 'down-ssh-pgctl' });
    expect(decideFence(input({ ssh: { reachable: true, running: true, hasCluster: true, standbySignal: false } })).reason).toContain('running: stop it');
  });

  it('port refused is evidence; a fence_command is evidence; an approval by name is its own verdict', () => {
    expect(decideFence(input({ port: classifyPort(refused) }))).toMatchObject({ action: 'none', evidence: 'refused-port' });
    expect(decideFence(input({ hasFenceCommand: true }))).toMatchObject({ action: 'command', evidence: 'fence-command' });
    expect(decideFence(input({ approvedUnfenced: true }))).toMatchObject({ action: 'none', evidence: 'approved-unfenced' });
  });

  it('a standby that answers in recovery is followed, never fenced', () => {
    expect(decideFence(input({ port: classifyPort({ answers: true, inRecovery: true }) }))).toMatchObject({ action: 'follow', evidence: null });
  });

  it('fence_command: the param wins over the inventory var; empty means none', () => {
    expect(fenceCommandFor(undefined, { fence_command: 'ipmi off "$1"' })).toBe('ipmi off "$1"');
    expect(fenceCommandFor('virsh destroy "$1"', { fence_command: 'x' })).toBe('virsh destroy "$1"');
    expect(fenceCommandFor('', { fence_command: 'x' })).toBeUndefined();
    expect(fenceCommandFor(undefined, {})).toBeUndefined();
  });

  it('runs the command as /bin/sh -c "$fence_command" runbook-fence HOST ADDRESS, env too; the exit code is the verdict', async () => {
    const run = async (cmd: string, host: string, address: string) => {
      const { argv, env } = fenceInvocation(cmd, host, address);
      const lines: string[] = [];
      const a = localCommand('fence', argv, { env, timeoutSec: 10 });
      const err = await a.run({ log: (l) => lines.push(l), signal: new AbortController().signal }).then(() => undefined, (e: Error) => e.message);
      return { lines, err, display: a.display };
    };
    const ok = await run('echo "$0 $1 $2 $RUNBOOK_FENCE_HOST $RUNBOOK_FENCE_ADDRESS"', 'pg1', '10.0.0.11');
    expect(ok).toMatchObject({ err: undefined, lines: ['runbook-fence pg1 10.0.0.11 pg1 10.0.0.11'] });
    expect(ok.display).toContain("/bin/sh -c 'echo \"$0 $1 $2 $RUNBOOK_FENCE_HOST $RUNBOOK_FENCE_ADDRESS\"' runbook-fence pg1 10.0.0.11");
    const bad = await run('echo no power >&2; exit 3', 'pg1', '10.0.0.11');
    expect(bad.err).toMatch(/exit code 3[\s\S]*no power/);
    // The node's name is an argument, never part of the shell text.
    const evil = await run('printf %s "$1"', 'pg1; touch /tmp/x', 'a');
    expect(evil.lines).toEqual(['pg1; touch /tmp/x']);
  });
});
