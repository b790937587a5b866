/** Read-only facts about the system: init, processes, ports, commands, kernel filesystems. */
import { fact } from '../engine/define.js';
import type { Fact } from '../engine/types.js';
import { type Command, sh } from '../shell/command.js';

/** Whether PID 1 is systemd (else services are driven by explicit start/stop/status commands). */
export const initIsSystemd: Fact<boolean> = fact({
  name: 'system.init_is_systemd',
  command: sh`[ -d /run/systemd/system ] && echo yes || echo no`,
  parse: (r) => r.stdout.trim() === 'yes',
});

/** Exit code of a command (0 = true). Never fails the step: a non-zero exit is the answer. */
export function commandSucceeds(command: Command, become?: boolean | string, name = 'command.succeeds'): Fact<boolean> {
  return fact({ name, command, ...(become !== undefined ? { become } : {}), parse: (r) => r.exitCode === 0 });
}

/** The trimmed output and exit code of a command. */
export function commandOutput(command: Command, become?: boolean | string, name = 'command.output'): Fact<{ exitCode: number | null; stdout: string; stderr: string }> {
  return fact({ name, command, ...(become !== undefined ? { become } : {}), parse: (r) => ({ exitCode: r.exitCode, stdout: r.stdout.trim(), stderr: r.stderr.trim() }) });
}

/** Whether a path exists. */
export function pathExists(path: string, become?: boolean | string): Fact<boolean> {
  return commandSucceeds(sh`test -e ${path}`, become, `path.exists ${path}`);
}

/** systemd unit state: active ("active", "inactive", "failed"…) and enabled ("enabled", "disabled"…). */
export function systemdUnit(unit: string): Fact<{ active: string; enabled: string }> {
  return fact({
    name: `systemd.unit ${unit}`,
    command: sh`systemctl is-active -- ${unit}; systemctl is-enabled -- ${unit} 2>/dev/null || true`,
    parse: (r) => {
      const [active, enabled] = r.stdout.trim().split('\n');
      return { active: active?.trim() || 'unknown', enabled: enabled?.trim() || 'unknown' };
    },
  });
}

/** Whether something listens on a TCP port (ss, else /proc/net/tcp*). */
export function tcpListening(port: number): Fact<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return fact({
    name: `tcp.listening ${port}`,
    command: sh`if command -v ss >/dev/null 2>&1; then ss -Hltn "sport = :${port}" | grep -q . ; else cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {print $2}' | grep -qi ${`:${hex}$`}; fi`,
    parse: (r) => r.exitCode === 0,
  });
}

/** Filesystems the kernel supports (/proc/filesystems), e.g. to gate an NFS mount. */
export const kernelFilesystems: Fact<string[]> = fact({
  name: 'kernel.filesystems',
  command: sh`cat /proc/filesystems`,
  parse: (r) => r.stdout.split('\n').map((l) => l.trim().split(/\s+/).pop() ?? '').filter(Boolean),
});
