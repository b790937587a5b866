/** Input files: UTF-8 or exit 2 with file:line:col and byte offset; -e @file linear in its size. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8, readTextFile } from '../../../src/core/text-file.js';
import { parseExtraVars } from '../../../src/engine/params.js';
import { BadInputError, ExitCode } from '../../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'rb-text-'));

describe('non-UTF-8 input files', () => {
  it('are refused with file:line:col and the byte offset', () => {
    const f = join(dir, 'inv.yml');
    writeFileSync(f, Buffer.concat([Buffer.from('all:\n  hosts:\n    caf'), Buffer.from([0xe9]), Buffer.from(':\n')]));
    const e = (() => {
      try {
        readTextFile(f);
      } catch (x) {
        return x;
      }
    })() as BadInputError;
    expect(e).toBeInstanceOf(BadInputError);
    expect(e.exitCode).toBe(ExitCode.badInput);
    expect(e.message).toBe(`${f}:3:8: not UTF-8: byte 0xe9 at byte offset 21 (save the file as UTF-8)`);
  });

  it('finds the first bad byte; valid multi-byte text passes', () => {
    expect(firstInvalidUtf8(Buffer.from('héllo ✓ 🚀'))).toBe(Buffer.byteLength('héllo ✓ 🚀'));
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0x80]))).toBe(1); // overlong
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xed, 0xa0, 0x80]))).toBe(1); // surrogate
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x9c]))).toBe(0); // cut short
  });

  it('-e @file: a non-UTF-8 file is an error naming it', () => {
    const f = join(dir, 'vars.yml');
    writeFileSync(f, Buffer.from([0x61, 0x3a, 0x20, 0xff, 0x0a]));
    const errors: string[] = [];
    parseExtraVars([`@${f}`], errors);
    expect(errors).toEqual([`-e @${f}: ${f}:1:4: not UTF-8: byte 0xff at byte offset 3 (save the file as UTF-8)`]);
  });
});

describe('-e @file: duplicate keys are found in one pass', () => {
  it('10k keys load; a duplicate key is named with its line', () => {
    const f = join(dir, 'big.yml');
    let t = '';
    for (let i = 0; i < 10_000; i++) t += `key_${i}: value ${i}\n`;
    writeFileSync(f, t);
    const errors: string[] = [];
    const out = parseExtraVars([`@${f}`], errors);
    expect(errors).toEqual([]);
    expect(Object.keys(out)).toHaveLength(10_000);
    expect(out.key_9999).toBe('value 9999');
    writeFileSync(f, `${t}key_5: again\n`);
    const dupErrors: string[] = [];
    parseExtraVars([`@${f}`], dupErrors);
    expect(dupErrors).toEqual([`-e @${f}: ${f}:10001:1: duplicate key "key_5" (each key may appear once)`]);
  }, 120_000);
});
