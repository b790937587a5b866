/**
 * Read-only file facts. Each is one small POSIX sh snippet whose output is easy to parse; they are
 * batched with the step's other facts into one remote script.
 */
import { fact } from '../engine/define.js';
import type { Fact } from '../engine/types.js';
import { pathWord, sh } from '../shell/command.js';

export interface FileInfo {
  exists: boolean;
  /** 'file' | 'directory' | 'link' | 'other' when it exists. */
  type?: 'file' | 'directory' | 'link' | 'other';
  /** Octal, 4 digits: "0644". */
  mode?: string;
  owner?: string;
  group?: string;
  size?: number;
  /** sha256 of the content (regular files only). */
  sha256?: string;
}

const TYPES: Record<string, FileInfo['type']> = { 'regular file': 'file', 'regular empty file': 'file', directory: 'directory', 'symbolic link': 'link' };

/** Type, mode, owner, group, size and sha256 of a path (stat does not follow links); `~user/` is that user's home. */
export function fileInfo(path: string, become?: boolean | string): Fact<FileInfo> {
  return fact({
    name: `file.info ${path}`,
    ...(become !== undefined ? { become } : {}),
    command: sh`f=${pathWord(path)}; if [ -e "$f" ] || [ -L "$f" ]; then stat -c '%F|%a|%U|%G|%s' -- "$f"; if [ -f "$f" ] && [ ! -L "$f" ]; then sha256sum -- "$f" | cut -d' ' -f1; fi; else echo absent; fi`,
    parse: (r) => parseFileInfo(r.stdout, r.exitCode, path),
  });
}

export function parseFileInfo(stdout: string, exitCode: number | null, path: string): FileInfo {
  if (exitCode !== 0) throw new Error(`cannot stat ${path} (exit ${exitCode})`);
  const [head, sum] = stdout.trim().split('\n');
  if (head === 'absent') return { exists: false };
  const [kind, mode, owner, group, size] = (head ?? '').split('|');
  const info: FileInfo = {
    exists: true,
    type: TYPES[kind ?? ''] ?? 'other',
    mode: (mode ?? '').padStart(4, '0'),
    owner: owner ?? '',
    group: group ?? '',
    size: Number(size),
  };
  if (sum) info.sha256 = sum.trim();
  return info;
}

/** A text file's content, or null when it does not exist. For config files (size-limited on purpose). */
export function fileContent(path: string, become?: boolean | string, maxBytes = 1 << 20): Fact<string | null> {
  return fact({
    name: `file.content ${path}`,
    ...(become !== undefined ? { become } : {}),
    command: sh`f=${pathWord(path)}; if [ -f "$f" ]; then s=$(wc -c < "$f"); if [ "$s" -gt ${maxBytes} ]; then echo "too large: $s bytes" >&2; exit 3; fi; printf 'present\n'; cat -- "$f"; else printf 'absent\n'; fi`,
    parse: (r) => {
      if (r.exitCode !== 0) throw new Error(`cannot read ${path}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
      if (r.stdout.startsWith('absent\n')) return null;
      if (!r.stdout.startsWith('present\n')) throw new Error(`unexpected output reading ${path}`);
      return r.stdout.slice('present\n'.length);
    },
  });
}
