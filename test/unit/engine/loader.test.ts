import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinDir, needsHooks } from '../../../src/engine/loader.js';

describe('loader hooks', () => {
  it('skips tsx and the resolve hook for compiled built-in runbooks only', () => {
    expect(needsHooks(join(builtinDir, 'setup-warm-standby.js'))).toBe(false);
    expect(needsHooks(join(builtinDir, 'mine.ts'))).toBe(true);
    expect(needsHooks(join(builtinDir, 'sub', 'x.js'))).toBe(true);
    expect(needsHooks(join(builtinDir, '..', 'elsewhere.js'))).toBe(true);
    expect(needsHooks('/tmp/user/runbook.js')).toBe(true);
    expect(needsHooks('/tmp/user/runbook.ts')).toBe(true);
  });
});
