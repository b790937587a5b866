/** -v .. -vvv lines from fixture results: what each level adds, the host prefix, secrets masked. */
import { describe, expect, it } from 'vitest';
import { raw, sh } from '../../../src/shell/command.js';
import { secret } from '../../../src/shell/secret.js';
import { eventLogger, verboseLines, verboseTransport } from '../../../src/transport/verbose.js';
import type { ExecResult, HostConnection, Transport } from '../../../src/transport/types.js';
import type { ConnectionSpec } from '../../../src/inventory/types.js';

const spec: ConnectionSpec = { name: 'pg1', address: 'a', port: 22, user: 'u', become: false, becomeUser: 'postgres' };
const pw = secret('verbose-unit-s3cret');

/** A transport whose every command "prints" the secret on stdout and a line on stderr. */
const fake: Transport = {
  connect: async (): Promise<HostConnection> => ({
    spec,
    exec: async (command): Promise<ExecResult> => ({ host: 'pg1', command: command.toString(), exitCode: 0, stdout: 'a\nverbose-unit-s3cret\n', stderr: 'warn\n', durationMs: 1234, timedOut: false }),
    close: async () => undefined,
  }),
  closeAll: async () => undefined,
};

async function linesAt(level: number): Promise<string[]> {
  const lines: string[] = [];
  const t = verboseTransport(fake, level, (l) => lines.push(l));
  await (await t.connect(spec)).exec(sh`psql -c ${pw}`, { become: true });
  return lines;
}

describe('verbose transport', () => {
  it('0: the transport itself, nothing logged', () => {
    expect(verboseTransport(fake, 0, () => undefined)).toBe(fake);
    expect(eventLogger(2, () => undefined)).toBeUndefined();
  });

  it('-v: the command (masked, with its become user) and how it ended', async () => {
    expect(await linesAt(1)).toEqual(['<pg1> EXEC (become postgres): psql -c ***', '<pg1> rc=0 (1.23 s)']);
  });

  it('-vv: also stdout and stderr, line by line, masked', async () => {
    expect(await linesAt(2)).toEqual(['<pg1> EXEC (become postgres): psql -c ***', '<pg1> STDOUT: a', '<pg1> STDOUT: ***', '<pg1> STDERR: warn', '<pg1> rc=0 (1.23 s)']);
  });

  it('-vvv: transport events, prefixed and masked', () => {
    const lines: string[] = [];
    eventLogger(3, (l) => lines.push(l))!('pg1', 'ssh: password verbose-unit-s3cret tried');
    expect(lines).toEqual(['<pg1> ssh: password *** tried']);
    expect(verboseLines('h', 'X: ', '')).toEqual([]);
    expect(verboseLines('h', 'X: ', raw('a\nb').toString())).toEqual(['<h> X: a', '<h> X: b']);
  });
});
