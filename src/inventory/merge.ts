/**
 * Variable precedence, as Ansible's VariableManager applies it for a host (default
 * VARIABLE_PRECEDENCE, hash_behaviour=replace: a later definition replaces the whole value):
 *   1. inline vars of `all`, then of the host's other groups sorted by (depth, priority, name);
 *   2. group_vars/all, then group_vars/<group> in the same order (source by source, -i order);
 *   3. the host's inline vars, then host_vars/<host>.
 * So group_vars files beat every inline group var, even a deeper group's.
 */
import type { GroupData, HostData, InventoryBuilder, VarMap } from './builder.js';
import type { VarsDirs } from './vars-dirs.js';

/** Ansible's sort_groups: shallow groups first, then lower priority, then by name. */
export function sortGroups(groups: GroupData[]): GroupData[] {
  return [...groups].sort(
    (a, b) => a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

export function mergeHostVars(builder: InventoryBuilder, varsDirs: VarsDirs, host: HostData): VarMap {
  const all = builder.groups.get('all')!;
  const groups = sortGroups([...builder.groupsOf(host)].filter((g) => g !== 'all').map((g) => builder.groups.get(g)!));
  const layers: VarMap[] = [
    all.vars,
    ...groups.map((g) => g.vars),
    varsDirs.varsFor('group_vars', ['all']),
    varsDirs.varsFor('group_vars', groups.map((g) => g.name)),
    host.vars,
    varsDirs.varsFor('host_vars', [host.name]),
  ];
  return combine(layers);
}

/** A group's own vars, as `ansible-inventory --export` shows them: inline, then group_vars files. */
export function groupVars(group: GroupData, varsDirs: VarsDirs): VarMap {
  return combine([group.vars, varsDirs.varsFor('group_vars', [group.name])]);
}

function combine(layers: VarMap[]): VarMap {
  const out: VarMap = new Map();
  for (const layer of layers) for (const [k, v] of layer) out.set(k, v);
  return out;
}
