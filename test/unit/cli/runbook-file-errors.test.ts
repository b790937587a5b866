/**
 * A runbook file that cannot be loaded, through the compiled CLI (`npm run build`): exit 2 with
 * file:line and what was expected, one line, no stack trace (issue 14 point 7).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importErrorPosition } from '../../../src/engine/loader.js';

const cli = new URL('../../../bin/runbook.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'rb-loader-'));
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function describeFile(name: string, text: string): Promise<{ code: number; out: string; file: string }> {
  const file = join(dir, name);
  writeFileSync(file, text);
  return new Promise((resolve) =>
    execFile(process.execPath, [cli, 'describe', file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code) : 0, out: `${stdout}${stderr}`, file }),
    ),
  );
}

function oneLine(out: string): void {
  expect(out).not.toMatch(/\n\s+at /);
  expect(out.trim().split('\n')).toHaveLength(1);
}

describe('runbook files that do not load exit 2 with file:line', () => {
  it('a throw at import: the line of the throw', async () => {
    const r = await describeFile('throws.ts', "const a = 1;\n\nthrow new Error('no inventory here');\nexport default { a };\n");
    expect(r.code, r.out).toBe(2);
    expect(r.out.trim()).toMatch(new RegExp(`^runbook: ${esc(r.file)}:3:\\d+: cannot load the runbook: no inventory here$`));
    oneLine(r.out);
  }, 60_000);

  it('a syntax error: file:line:col and what esbuild expected', async () => {
    const r = await describeFile('syntax.ts', "export default {\n  id: 'x',\n  steps: [\n  oops oops\n};\n");
    expect(r.code, r.out).toBe(2);
    expect(r.out.trim()).toMatch(new RegExp(`^runbook: ${esc(r.file)}:4:\\d+: cannot load the runbook: Expected`));
    oneLine(r.out);
  }, 60_000);

  it('only named exports: what was expected and the line of the first export (no TypeError)', async () => {
    const r = await describeFile('named.ts', "// a runbook\nconst x = 1;\nexport const runbookish = { id: 'x' };\nexport const other = x;\n");
    expect(r.code, r.out).toBe(2);
    expect(r.out.trim()).toBe(`runbook: ${r.file}:3:1: expected \`export default defineRunbook({ id, steps, ... })\`; found no default export (named exports: other, runbookish)`);
    oneLine(r.out);
  }, 60_000);

  it('a default export that is not a runbook says what it is', async () => {
    const r = await describeFile('notrb.ts', "export default { name: 'x' };\n");
    expect(r.code, r.out).toBe(2);
    expect(r.out).toMatch(/:1:1: expected .*found a default export that is not a runbook \(an object with keys name\)/);
    oneLine(r.out);
  }, 60_000);

  it('positions from stacks and messages', () => {
    const f = '/r/a.ts';
    expect(importErrorPosition(Object.assign(new Error('x'), { stack: 'Error: x\n    at file:///r/a.ts:7:9' }), f)).toEqual({ file: f, line: 7, col: 9 });
    expect(importErrorPosition(new Error('/r/a.ts:2:5: ERROR: Expected ";"'), f)).toEqual({ file: f, line: 2, col: 5 });
    expect(importErrorPosition(new Error('nothing'), f)).toEqual({ file: f });
  });
});
