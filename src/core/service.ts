/**
 * Service state: systemd when PID 1 is systemd, else the service's own start/stop/status commands
 * (hosts without systemd, like the lab's namespaces).
 */
import { blocked, change, fact, noop } from '../engine/define.js';
import type { Fact, Operation, Plan } from '../engine/types.js';
import { initIsSystemd, systemdUnit } from './system.js';
import { type Command, sh } from '../shell/command.js';

export interface ServiceCommands {
  start: Command;
  stop: Command;
  /** Exit 0 when running. */
  status: Command;
  restart?: Command;
}

export interface ServiceArgs {
  /** systemd unit name (used when PID 1 is systemd). */
  name: string;
  state: 'running' | 'stopped';
  /** systemd only: enabled at boot. */
  enabled?: boolean;
  /** Used when there is no systemd (and preferred over it when `preferCommands`). */
  commands?: ServiceCommands;
  preferCommands?: boolean;
  become?: boolean | string;
}

export interface ServiceFacts {
  systemd: boolean;
  /** systemd: is-active output; commands: 'active' or 'inactive' from the status command. */
  active: string;
  enabled: string;
}

/** Status through the service's own status command. */
export function commandStatus(c: ServiceCommands, become?: boolean | string): Fact<{ active: string; enabled: string }> {
  return fact({
    name: 'service.status',
    command: c.status,
    ...(become !== undefined ? { become } : {}),
    parse: (r) => ({ active: r.exitCode === 0 ? 'active' : 'inactive', enabled: 'unknown' }),
  });
}

export function planService(a: ServiceArgs, f: ServiceFacts): Plan {
  const useCommands = !f.systemd || a.preferCommands;
  if (useCommands && !a.commands) return blocked(`${a.name}: no systemd on this host and no start/stop/status commands given`);
  const running = f.active === 'active';
  const commands: Command[] = [];
  const what: string[] = [];
  if (a.state === 'running' && !running) {
    commands.push(useCommands ? a.commands!.start : sh`systemctl start -- ${a.name}`);
    what.push('start');
  } else if (a.state === 'stopped' && running) {
    commands.push(useCommands ? a.commands!.stop : sh`systemctl stop -- ${a.name}`);
    what.push('stop');
  }
  if (!useCommands && a.enabled !== undefined) {
    const isEnabled = f.enabled === 'enabled';
    if (a.enabled !== isEnabled) {
      commands.push(a.enabled ? sh`systemctl enable -- ${a.name}` : sh`systemctl disable -- ${a.name}`);
      what.push(a.enabled ? 'enable' : 'disable');
    }
  }
  if (commands.length === 0) return noop(`${a.name} is ${a.state}${a.enabled !== undefined && !useCommands ? ` and ${a.enabled ? 'enabled' : 'disabled'}` : ''}`);
  return change(`${what.join(' + ')} ${a.name}`, commands);
}

/**
 * The facts depend on the init system, so the operation reads systemd's unit state and, when
 * commands are given, the command status too — all in the same batch; the plan picks.
 */
export function service(a: ServiceArgs): Operation<{ systemd: boolean; unit: { active: string; enabled: string }; cmd: { active: string; enabled: string } }> {
  const unitFact = fact({ ...systemdUnit(a.name), command: sh`if [ -d /run/systemd/system ]; then ${systemdUnit(a.name).command}; else echo unknown; fi` });
  const cmdFact = a.commands ? commandStatus(a.commands, a.become) : fact({ name: 'service.status', command: sh`true`, parse: () => ({ active: 'unknown', enabled: 'unknown' }) });
  return {
    facts: { systemd: initIsSystemd, unit: unitFact, cmd: cmdFact },
    plan: (f) => {
      const useCommands = !f.systemd || a.preferCommands;
      const s = useCommands ? f.cmd : f.unit;
      return planService(a, { systemd: f.systemd, active: s.active, enabled: s.enabled });
    },
  };
}

/** A restart, for handlers: `apply: restartService(args)`. */
export function restartCommand(a: ServiceArgs, systemd: boolean): Command {
  if (!systemd || a.preferCommands) {
    if (!a.commands) throw new Error(`${a.name}: no systemd and no commands to restart it`);
    return a.commands.restart ?? sh`{ ${a.commands.stop} ; } ; ${a.commands.start}`;
  }
  return sh`systemctl restart -- ${a.name}`;
}
