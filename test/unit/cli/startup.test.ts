/**
 * Start-up (issue 17 point 3): the CLI imports only the file of the command being run, so
 * `runbook --version` and `runbook list` load no transport, YAML parser, templates or prompts.
 * Checked on the built bin with an import trace, as a user starts it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');
const HEAVY = ['ssh2', 'yaml', 'nunjucks', '@inquirer', 'listr2'];

/** The npm packages a CLI invocation loads (and every module URL, to show the trace worked). */
function packagesLoaded(args: string[]): { code: number | null; out: string; packages: Set<string>; urls: string[] } {
  const trace = join(mkdtempSync(join(tmpdir(), 'rb-trace-')), 'imports');
  const r = spawnSync(process.execPath, ['--import', join(ROOT, 'test/support/trace-imports.mjs'), join(ROOT, 'bin/runbook.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, TRACE_IMPORTS_OUT: trace },
    timeout: 60_000,
  });
  const urls = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  const packages = new Set(urls.map((url) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1]).filter((p): p is string => p !== undefined));
  return { code: r.status, out: r.stdout, packages, urls };
}

describe('CLI start-up loads only what the command needs', () => {
  it.each([['--version'], ['-V']])('runbook %s loads no package at all (not even commander) and prints the package version', (arg) => {
    const { code, out, packages, urls } = packagesLoaded([arg]);
    expect(code).toBe(0);
    expect(out).toBe(`${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
    expect(urls.some((u) => u.endsWith('/dist/src/cli/main.js'))).toBe(true); // the trace works
    expect([...packages]).toEqual([]);
  });

  it('runbook list', () => {
    const { code, out, packages } = packagesLoaded(['list']);
    expect(code).toBe(0);
    expect(out).toMatch(/^setup-warm-standby /m);
    expect(packages.has('commander')).toBe(true); // the trace works: the parser itself is seen
    for (const heavy of HEAVY) expect([...packages].filter((p) => p.startsWith(heavy))).toEqual([]);
  });

  it('--version with other arguments still goes through commander (same output)', () => {
    const { code, out, packages } = packagesLoaded(['--version', 'list']);
    expect(code).toBe(0);
    expect(out).toBe(packagesLoaded(['--version']).out);
    expect(packages.has('commander')).toBe(true);
  });

  it('a command that connects still loads its transport', () => {
    const { packages } = packagesLoaded(['exec', '--help']);
    expect(packages.has('ssh2')).toBe(true);
  });
});
