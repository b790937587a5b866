/**
 * What a lab is: its name, subnet, hosts and layout, and the kernel object names derived from them.
 * Pure: parsing and naming only, so it is unit-testable and shared by up, down and status.
 */
import { createHash } from 'node:crypto';
import { BadInputError } from '../errors.js';
import { checkLabPgVersion, DEBIAN_MAJOR } from './pg-server.js';

export type HostRole = 'db' | 'nfs' | 'plain';
export type DbLayout = 'debian' | 'rhel';

export interface LabHost {
  name: string;
  role: HostRole;
  address: string;
  /** 1-based position; names the root-side veth. */
  index: number;
}

export interface LabSpec {
  name: string;
  /** Short [a-z0-9] tag in every interface and netns name, so labs never collide. */
  tag: string;
  /** The /24 network, e.g. "10.231.0". */
  net: string;
  layout: DbLayout;
  /** PostgreSQL major of the database hosts ('15' when absent: labs made before the option). */
  pgVersion?: string;
  hosts: LabHost[];
}

export function labPgMajor(spec: Pick<LabSpec, 'pgVersion'>): string {
  return spec.pgVersion ?? DEBIAN_MAJOR;
}

export const DEFAULT_LAB = 'lab';
/** Labs with a fixed place, so the committed inventories/lab.yml and lab-rhel.yml match them. */
export const PRESETS: Record<string, { net: string; layout: DbLayout }> = {
  lab: { net: '10.231.0', layout: 'debian' },
  rhel: { net: '10.231.1', layout: 'rhel' },
};
export const DEFAULT_HOSTS = 'pg1=db,pg2=db,nfs1=nfs';
/** Host addresses start at .11; .1 is the bridge, .100 the reserved VIP. */
const FIRST_HOST_OCTET = 11;
const VIP_OCTET = 100;
const MAX_HOSTS = 200;

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;
const HOST_RE = /^[a-z][a-z0-9-]{0,30}$/;

export function labName(name: string | undefined): string {
  const n = name ?? process.env.RUNBOOK_LAB_NAME ?? DEFAULT_LAB;
  if (!NAME_RE.test(n)) throw new BadInputError(`lab name ${JSON.stringify(n)}: use a-z, 0-9 and '-', starting with a letter, at most 32 characters`);
  return n;
}

/** Names of up to 5 [a-z0-9] characters stand for themselves; others are hashed (still 5 chars). */
export function labTag(name: string): string {
  if (/^[a-z0-9]{1,5}$/.test(name)) return name;
  return 'h' + createHash('sha256').update(name).digest('hex').slice(0, 4);
}

/** "10.231.7.0/24" or "10.231.7.0" → "10.231.7". Only /24 is supported: hosts are .11 upwards. */
export function parseSubnet(subnet: string): string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0(?:\/24)?$/.exec(subnet.trim());
  if (!m || m.slice(1).some((o) => Number(o) > 255)) {
    throw new BadInputError(`--subnet ${JSON.stringify(subnet)}: expected a /24 network such as 10.231.0.0/24`);
  }
  const [a, b] = [Number(m[1]), Number(m[2])];
  const isPrivate = a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168);
  if (!isPrivate) throw new BadInputError(`--subnet ${subnet}: the lab only uses private (RFC 1918) networks`);
  return `${m[1]}.${m[2]}.${m[3]}`;
}

/** "--hosts 50" → h01..h50 (sshd only); "--hosts pg1=db,pg2=db,nfs1=nfs" → named hosts with roles. */
export function parseHosts(text: string, net: string): LabHost[] {
  const trimmed = text.trim();
  let entries: Array<[string, HostRole]>;
  if (/^\d+$/.test(trimmed)) {
    const n = Number(trimmed);
    if (n < 1 || n > MAX_HOSTS) throw new BadInputError(`--hosts ${n}: between 1 and ${MAX_HOSTS}`);
    const width = Math.max(2, String(n).length);
    entries = Array.from({ length: n }, (_, i) => [`h${String(i + 1).padStart(width, '0')}`, 'plain']);
  } else {
    entries = trimmed.split(',').map((item) => {
      const [host, role = 'plain'] = item.trim().split('=');
      if (!HOST_RE.test(host ?? '')) throw new BadInputError(`--hosts: bad host name ${JSON.stringify(host)}`);
      if (role !== 'db' && role !== 'nfs' && role !== 'plain') {
        throw new BadInputError(`--hosts: role of ${host} must be db, nfs or plain, not ${JSON.stringify(role)}`);
      }
      return [host!, role];
    });
    if (entries.length > MAX_HOSTS) throw new BadInputError(`--hosts: at most ${MAX_HOSTS} hosts`);
    const dup = entries.find(([h], i) => entries.findIndex(([g]) => g === h) !== i);
    if (dup) throw new BadInputError(`--hosts: ${dup[0]} is listed twice`);
  }
  let octet = FIRST_HOST_OCTET;
  return entries.map(([name, role], i) => {
    if (octet === VIP_OCTET) octet++;
    return { name, role, address: `${net}.${octet++}`, index: i + 1 };
  });
}

export function buildSpec(opts: { name?: string; subnet?: string; hosts?: string; layout?: string; pgVersion?: string }, defaultNet: string): LabSpec {
  const name = labName(opts.name);
  const layout = opts.layout ?? PRESETS[name]?.layout ?? 'debian';
  if (layout !== 'debian' && layout !== 'rhel') throw new BadInputError(`--layout ${layout}: debian or rhel`);
  const net = opts.subnet ? parseSubnet(opts.subnet) : defaultNet;
  const pgVersion = checkLabPgVersion(opts.pgVersion ?? DEBIAN_MAJOR);
  return { name, tag: labTag(name), net, layout, pgVersion, hosts: parseHosts(opts.hosts ?? DEFAULT_HOSTS, net) };
}

/** Kernel object names; interface names stay within Linux's 15 characters. */
export const names = {
  bridge: (spec: Pick<LabSpec, 'tag'>) => `rb-${spec.tag}`,
  veth: (spec: Pick<LabSpec, 'tag'>, host: LabHost) => `rb-${spec.tag}-${host.index}`,
  netns: (spec: Pick<LabSpec, 'tag'>, host: Pick<LabHost, 'name'>) => `rb-${spec.tag}-${host.name}`,
  /** Everything of this lab in `ip link` / `ip netns` starts with this. */
  prefix: (spec: Pick<LabSpec, 'tag'>) => `rb-${spec.tag}-`,
};

export const gateway = (spec: LabSpec) => `${spec.net}.1`;
export const vip = (spec: LabSpec) => `${spec.net}.${VIP_OCTET}`;
export const subnetCidr = (spec: LabSpec) => `${spec.net}.0/24`;

export function sameShape(a: LabSpec, b: LabSpec): boolean {
  const key = (s: LabSpec) => JSON.stringify([s.net, s.layout, labPgMajor(s), s.hosts.map((h) => [h.name, h.role, h.address])]);
  return key(a) === key(b);
}
