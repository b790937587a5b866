import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveParams } from '../../../src/engine/params.js';
import { param } from '../../../src/engine/define.js';
import { isSecret, secret } from '../../../src/shell/secret.js';
import { BadInputError } from '../../../src/errors.js';

const specs = {
  name: param.string({ description: 'n', required: true }),
  port: param.number({ description: 'p', default: 5432 }),
  force: param.boolean({ description: 'f', default: false }),
  mode: param.string({ description: 'm', choices: ['a', 'b'], default: 'a' }),
  hosts: param.list({ description: 'h' }),
  pw: param.secret({ description: 's' }),
};

describe('params', () => {
  it('types -e values, reads @file, secrets from env and file, and inventory vars', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rb-params-'));
    writeFileSync(join(dir, 'v.yml'), 'port: 6000\nhosts: [a, b]\n');
    writeFileSync(join(dir, 'pw'), 'from-file-secret\n');
    const v = resolveParams(specs, { extraVars: ['name=x', `@${join(dir, 'v.yml')}`, 'force=yes'], secrets: [`pw=file:${join(dir, 'pw')}`] });
    expect(v).toMatchObject({ name: 'x', port: 6000, force: true, mode: 'a', hosts: ['a', 'b'] });
    expect(isSecret(v.pw) && (v.pw as any).reveal()).toBe('from-file-secret');
    const w = resolveParams(specs, { groupVars: { name: 'g', pw: secret('inv-secret-x') }, hostVars: [{ port: 1 }, { port: 1 }], secrets: [] });
    expect(w).toMatchObject({ name: 'g', port: 1 });
    expect(isSecret(w.pw)).toBe(true);
    expect(resolveParams(specs, { extraVars: ['name=x'], secrets: ['pw=env:RB_X'], env: { RB_X: 'env-secret' } }).pw).toBeInstanceOf(Object);
  });

  it('reports every problem at once, as bad input', () => {
    let err: unknown;
    try {
      resolveParams(specs, { extraVars: ['port=abc', 'mode=c', 'typo=1', 'pw=inline'], secrets: ['name=env:NOPE'], env: { NOPE: 'xyz' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadInputError);
    const m = (err as Error).message;
    expect(m).toMatch(/port: expected a number/);
    expect(m).toMatch(/"c" is not one of a, b/);
    expect(m).toMatch(/no param typo/);
    expect(m).toMatch(/pw is a secret: give it with --secret/);
    expect(m).toMatch(/param name is a string, not a secret/);
    expect(() => resolveParams(specs, {})).toThrow(/param name is required/);
  });

  it('refuses inventory values the selected hosts disagree on', () => {
    expect(() => resolveParams(specs, { extraVars: ['name=x'], hostVars: [{ port: 1 }, { port: 2 }] })).toThrow(/different inventory values/);
  });
});
