import { describe, expect, it, vi } from 'vitest';
import { BadInputError, EnvironmentError, ExitCode } from '../../../src/errors.js';
import { requireRoot } from '../../../src/lab/preflight.js';
import { buildSpec, labTag, names, parseHosts, parseSubnet, vip } from '../../../src/lab/spec.js';

describe('lab spec', () => {
  it('builds the default lab: pg1, pg2, nfs1 from .11 on the given /24', () => {
    const spec = buildSpec({ name: 'lab' }, '10.231.0');
    expect(spec.hosts.map((h) => [h.name, h.role, h.address])).toEqual([
      ['pg1', 'db', '10.231.0.11'],
      ['pg2', 'db', '10.231.0.12'],
      ['nfs1', 'nfs', '10.231.0.13'],
    ]);
    expect(vip(spec)).toBe('10.231.0.100');
  });

  it('numbers plain hosts and never hands out the VIP address', () => {
    const hosts = parseHosts('120', '10.231.7');
    expect(hosts[0]!.name).toBe('h001');
    expect(hosts.map((h) => h.address)).not.toContain('10.231.7.100');
    expect(new Set(hosts.map((h) => h.address)).size).toBe(120);
  });

  it('refuses bad subnets, names, roles and duplicates with a bad-input error', () => {
    expect(() => parseSubnet('8.8.8.0/24')).toThrow(/private/);
    expect(() => parseSubnet('10.231.0.0/16')).toThrow(BadInputError);
    expect(() => parseHosts('pg1=db,pg1=db', '10.231.0')).toThrow(/twice/);
    expect(() => parseHosts('pg1=web', '10.231.0')).toThrow(/role/);
    expect(() => buildSpec({ name: 'Bad_Name' }, '10.231.0')).toThrow(/lab name/);
  });

  it('keeps interface names within Linux 15 characters, even for long lab names', () => {
    const spec = buildSpec({ name: 'a-rather-long-lab-name', hosts: '150' }, '10.231.3');
    expect(labTag(spec.name)).toHaveLength(5);
    for (const h of spec.hosts) expect(names.veth(spec, h).length).toBeLessThanOrEqual(15);
    expect(names.bridge(spec).length).toBeLessThanOrEqual(15);
  });
});

describe('lab without root', () => {
  it('refuses with the environment exit code and says why', () => {
    // The clone CI runs in may not be readable by another user, so fake the uid, not the user.
    const getuid = vi.spyOn(process, 'getuid').mockReturnValue(1000);
    try {
      expect(() => requireRoot('up')).toThrow(EnvironmentError);
      expect(() => requireRoot('up')).toThrow(/needs root/);
      try {
        requireRoot('up');
      } catch (error) {
        expect((error as EnvironmentError).exitCode).toBe(ExitCode.environment);
      }
    } finally {
      getuid.mockRestore();
    }
  });
});
