/**
 * Hostile values come back byte-exact through `printf %s` over real SSH, under dash and bash: the
 * sh`` quoting holds whatever shell the remote end uses.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secret, sh } from '../../src/shell/index.js';
import { WireError } from '../../src/shell/wire.js';
import { ExitCode } from '../../src/errors.js';
import { SshTransport, type HostConnection } from '../../src/transport/index.js';
import { specFor, startLoopbackSshd, type LoopbackSshd } from '../support/loopback-sshd.js';

const HOSTILE: Array<[string, string]> = [
  ['empty string', ''],
  ['single quote', "it's"],
  ['only quotes', `'"'"'`],
  ['double quotes', 'say "hi"'],
  ['command substitution', '$(touch /tmp/runbook-pwned)'],
  ['backticks', '`id`'],
  ['variable', '$HOME ${PATH} $1 $@ $$'],
  ['newlines', 'line1\nline2\n\nline4\n'],
  ['carriage return and tab', 'a\r\tb'],
  ['semicolon', 'a; rm -rf /tmp/nothing'],
  ['and-and / or-or', 'true && false || echo x'],
  ['pipe and redirects', 'a | b > c < d 2>&1'],
  ['globs', '* ? [a-z] ~ {a,b}'],
  ['leading dash', '-n'],
  ['leading double dash', '--help'],
  ['backslashes', 'a\\b\\\\c\\'],
  ['backslash-n literal', '\\n\\t%s%d'],
  ['unicode', 'héllo wörld ✓ 日本語 🚀'],
  ['spaces only', '   '],
  ['hash', '# not a comment'],
  ['exclamation', 'hi!!'],
  ['control bytes', '\x01\x1b[31mred\x1b[0m\x7f'],
];

let sshd: LoopbackSshd;
let transport: SshTransport;
let conn: HostConnection;

beforeAll(async () => {
  sshd = await startLoopbackSshd();
  transport = new SshTransport({ sshConfigFile: '/nonexistent' });
  conn = await transport.connect(specFor(sshd.target));
});
afterAll(async () => {
  await transport?.closeAll();
  await sshd?.stop();
});

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

describe.each(['dash', 'bash'])('under %s', (shell) => {
  it.each(HOSTILE)('%s comes back byte-exact', async (_name, value) => {
    const inner = sh`printf %s ${value}`;
    // Without secrets the display form is the wire text, so it can be quoted again as one word.
    const r = await conn.exec(sh`${shell} -c ${inner.toString()}`, { check: true });
    expect(r.stdout).toBe(value);
    expect(r.stderr).toBe('');
  });
});

it('arrays become one word each, nested commands compose', async () => {
  const r = await conn.exec(sh`printf '[%s]' ${HOSTILE.map(([, v]) => v)}`, { check: true });
  expect(r.stdout).toBe(HOSTILE.map(([, v]) => `[${v}]`).join(''));
  const nested = await conn.exec(sh`${sh`printf %s ${'a b'}`}; printf %s ${"'"}`, { check: true });
  expect(nested.stdout).toBe("a b'");
});

it('nothing in the table was executed', async () => {
  const r = await conn.exec(sh`test -e /tmp/runbook-pwned && echo pwned || echo clean`);
  expect(r.stdout).toBe('clean\n');
});

describe('secrets', () => {
  // A secret reaches the remote byte-exact (compared by hash: the output itself is masked).
  it.each(HOSTILE.filter(([, v]) => !/[\n\r]/.test(v)))('%s as a secret arrives byte-exact', async (_name, value) => {
    const s = secret(`s3cr3t:${value}`);
    const r = await conn.exec(sh`printf %s ${s} | sha256sum`, { check: true });
    expect(r.stdout.split(' ')[0]).toBe(sha256(`s3cr3t:${value}`));
    expect(r.command).not.toContain(`s3cr3t:${value}`);
  });

  it('a secret printed back is masked in the result', async () => {
    const r = await conn.exec(sh`printf '%s\n' ${secret('visible-secret-2290')}`, { check: true });
    expect(r.stdout).toBe('***\n');
  });

  // Refused while the wire text is built (bad input, exit 2): no channel opens, nothing is sent.
  it('a secret with a line break is refused before anything is sent', async () => {
    const e = await conn.exec(sh`printf %s ${secret('two\nlines')}`).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(WireError);
    expect((e as WireError).exitCode).toBe(ExitCode.badInput);
    expect((e as Error).message).toMatch(/cannot contain a line break/);
    expect((e as Error).message).not.toContain('two');
  });
});
