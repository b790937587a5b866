import { describe, expect, it } from 'vitest';
import { secret, sql } from '../../../src/shell/index.js';

describe('sql``', () => {
  it('makes literals of values and identifiers with sql.ident', () => {
    const q = sql`ALTER ROLE ${sql.ident('re"pl')} SET x = ${"it's"} ${[1, 'a']} ${null} ${true}`;
    expect(q.toString()).toBe(`ALTER ROLE "re""pl" SET x = 'it''s' 1, 'a' NULL true`);
  });

  it('keeps secrets secret, doubled quotes included', () => {
    const q = sql`PASSWORD ${secret("pa'ss-sql-1")}`;
    expect(q.toString()).toBe("PASSWORD '***'");
    const wire = q.parts.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
    expect(wire).toBe("PASSWORD 'pa''ss-sql-1'");
  });

  it('refuses NUL bytes, empty identifiers and objects', () => {
    expect(() => sql`${'a\0b'}`).toThrow(TypeError);
    expect(() => sql.ident('')).toThrow(TypeError);
    expect(() => sql`${{} as never}`).toThrow(TypeError);
  });
});
