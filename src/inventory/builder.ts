/**
 * Ansible's InventoryData: groups, hosts, parent/child edges and inline vars, filled by the YAML and
 * INI loaders in file order, then reconciled (top-level groups under `all`, lone hosts in
 * `ungrouped`). Every variable keeps where it was defined, for messages and relative paths.
 */
import { BadInputError, type SourcePosition } from '../errors.js';
import { checkConnectionVar } from './connection.js';

export interface Located {
  value: unknown;
  pos: SourcePosition;
}
/** Variables in definition order, each with where it was defined. */
export type VarMap = Map<string, Located>;

export interface GroupData {
  name: string;
  hosts: string[];
  children: string[];
  parents: string[];
  vars: VarMap;
  priority: number;
  /** Longest path from `all` (Ansible's group depth); set by reconcile(). */
  depth: number;
}

export interface HostData {
  name: string;
  /** Groups the host was put in directly. */
  direct: string[];
  vars: VarMap;
}

export class InventoryBuilder {
  readonly groups = new Map<string, GroupData>();
  readonly hosts = new Map<string, HostData>();
  /** Each group's hosts as a set: membership tests stay O(1) on inventories of many thousand hosts. */
  private readonly members = new Map<string, Set<string>>();

  constructor() {
    this.addGroup('all');
    this.addGroup('ungrouped');
    this.addChild('all', 'ungrouped', { file: '(implicit)' });
  }

  addGroup(name: string): GroupData {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, hosts: [], children: [], parents: [], vars: new Map(), priority: 1, depth: 0 };
      this.groups.set(name, g);
    }
    return g;
  }

  /** Adds the host to the group; a port (from `host:port`) counts only where the host first appears, as in Ansible. */
  addHost(name: string, group: string, port: number | undefined, pos: SourcePosition): HostData {
    let h = this.hosts.get(name);
    if (!h) {
      h = { name, direct: [], vars: new Map() };
      this.hosts.set(name, h);
      if (port !== undefined) h.vars.set('ansible_port', { value: port, pos });
    }
    const g = this.group(group, pos);
    if (!this.membersOf(group).has(name)) {
      this.membersOf(group).add(name);
      g.hosts.push(name);
    }
    // A host is in a handful of groups: a list is fine here.
    if (!h.direct.includes(group)) h.direct.push(group);
    return h;
  }

  setHostVar(host: string, key: string, value: unknown, pos: SourcePosition): void {
    checkConnectionVar(key, value, pos);
    this.hosts.get(host)!.vars.set(key, { value, pos });
  }

  setGroupVar(group: string, key: string, value: unknown, pos: SourcePosition): void {
    const g = this.group(group, pos);
    if (key === 'ansible_group_priority') {
      // Ansible turns it into the group's priority (int()), and it stops being a variable.
      const n = typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n)) {
        throw new BadInputError(`ansible_group_priority must be an integer, got ${JSON.stringify(value)}`, pos);
      }
      g.priority = n;
      return;
    }
    checkConnectionVar(key, value, pos);
    g.vars.set(key, { value, pos });
  }

  addChild(parent: string, child: string, pos: SourcePosition): void {
    const p = this.group(parent, pos);
    const c = this.group(child, pos);
    if (p.children.includes(child)) return;
    const path = this.pathDown(child, parent);
    if (path) {
      throw new BadInputError(`group "${parent}" would be its own ancestor: ${[parent, ...path].join(' → ')}`, pos);
    }
    p.children.push(child);
    c.parents.push(parent);
  }

  /** Top-level groups go under `all`; hosts in no group but `all` go to `ungrouped` (Ansible's reconcile_inventory). */
  reconcile(): void {
    for (const g of this.groups.values()) {
      if (g.name !== 'all' && g.parents.length === 0) this.addChild('all', g.name, { file: '(implicit)' });
    }
    const ungrouped = this.groups.get('ungrouped')!;
    const leaving = new Set<string>();
    for (const h of this.hosts.values()) {
      const others = [...this.groupsOf(h)].filter((g) => g !== 'all' && g !== 'ungrouped');
      if (others.length > 0 && h.direct.includes('ungrouped')) {
        leaving.add(h.name);
        h.direct = h.direct.filter((g) => g !== 'ungrouped');
      } else if (others.length === 0 && !h.direct.includes('ungrouped')) {
        ungrouped.hosts.push(h.name);
        h.direct.push('ungrouped');
      }
    }
    if (leaving.size > 0) ungrouped.hosts = ungrouped.hosts.filter((n) => !leaving.has(n));
    this.members.delete('ungrouped'); // its host list was rebuilt above: the set is re-derived on next use
    const depth = (g: GroupData): number =>
      g.parents.length === 0 ? 0 : Math.max(...g.parents.map((p) => depth(this.groups.get(p)!) + 1));
    for (const g of this.groups.values()) g.depth = depth(g);
  }

  /** Every group the host is in: its direct groups and their ancestors, ancestors first. */
  groupsOf(h: HostData): Set<string> {
    const out = new Set<string>();
    const visit = (name: string) => {
      for (const p of this.groups.get(name)!.parents) visit(p);
      out.add(name);
    };
    for (const g of h.direct) visit(g);
    return out;
  }

  private membersOf(group: string): Set<string> {
    let m = this.members.get(group);
    if (!m) this.members.set(group, (m = new Set(this.groups.get(group)?.hosts)));
    return m;
  }

  private group(name: string, pos: SourcePosition): GroupData {
    const g = this.groups.get(name);
    if (!g) throw new BadInputError(`unknown group "${name}"`, pos);
    return g;
  }

  /** The child path from `from` down to `to`, if there is one. */
  private pathDown(from: string, to: string): string[] | undefined {
    if (from === to) return [to];
    for (const c of this.groups.get(from)!.children) {
      const rest = this.pathDown(c, to);
      if (rest) return [from, ...rest];
    }
    return undefined;
  }
}
