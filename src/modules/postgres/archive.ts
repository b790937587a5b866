/**
 * WAL archiving into a directory, chosen by server version: from 15 the basic_archive module
 * (temp file, fsync, rename; an identical file already there is success, a different one a
 * failure); before 15 a shell archive_command that does the same. restore_command only where the
 * standby can read the archive (a shared mount). Pure: settings and verdicts, no I/O.
 */
import { gucProblem, pgShellLine, type ShellLine } from '../../shell/config-text.js';
import { pgFeatures } from './version.js';

export interface ArchiveSpec {
  /** The archive directory, as given (trailing slashes dropped here). */
  dir: string;
  /** The same directory is reachable on every node (an NFS mount): standbys may restore from it. */
  shared: boolean;
}

export function archiveDir(dir: string): string {
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

/** Why wal_archive_dir cannot be used, or undefined (checked in validate: exit 2 before any host). */
export function archiveDirProblem(dir: string): string | undefined {
  if (!dir.startsWith('/')) return 'must be an absolute path';
  if (archiveDir(dir) === '/') return 'cannot be /';
  if (dir.split('/').includes('..')) return 'must not contain ..';
  return gucProblem(dir);
}

/**
 * Before 15: copy to a temp name in the archive dir, fsync it, link it to the final name (link
 * fails when the name exists: never overwrite), fsync the directory. A file already archived
 * with identical content is success (a retry after a crash between link and the server's
 * bookkeeping); a different one is a failure. A temp file a crash left behind has another name
 * each time ($$), so it never blocks archiving.
 */
export function archiveCommand(dir: string): ShellLine {
  const d = archiveDir(dir);
  return pgShellLine`d=${d}; f="$d/%f"; if [ -e "$f" ]; then cmp -s %p "$f"; exit $?; fi; t="$d/.%f.rb-tmp.$$"; cp %p "$t" && sync "$t" && ln "$t" "$f" && rm -f "$t" && sync "$d" || { rc=$?; rm -f "$t"; exit $rc; }`;
}

export function restoreCommand(dir: string): ShellLine {
  const d = archiveDir(dir);
  return pgShellLine`cp ${d}/%f %p`;
}

/** The archive settings for a server of this version; what they are and why, for the plan. */
export function archiveSettings(versionNum: number, spec: ArchiveSpec): { settings: Record<string, string | ShellLine>; notes: string[] } {
  const d = archiveDir(spec.dir);
  const settings: Record<string, string | ShellLine> = { archive_mode: 'on' };
  const notes: string[] = [];
  if (pgFeatures(versionNum).archiveLibrary) {
    settings.archive_library = 'basic_archive';
    settings['basic_archive.archive_directory'] = d;
    // Both set is an error from 16 (and ambiguous in 15): the library wins, the command is emptied.
    settings.archive_command = pgShellLine``;
    notes.push(`archive_library basic_archive into ${d} (temp file, fsync, rename)`);
  } else {
    settings.archive_command = archiveCommand(d);
    notes.push(`archive_command into ${d} (temp name, sync, link without overwrite)`);
  }
  if (spec.shared) {
    settings.restore_command = restoreCommand(d);
    notes.push(`restore_command from ${d} (wal_archive_shared: every node reads it)`);
  } else {
    notes.push(`no restore_command: ${d} is local to each node (set wal_archive_shared=true when it is one shared mount)`);
  }
  return { settings, notes };
}

/** What the archive probe saw (one line of text from the host). */
export type ArchiveProbe =
  | { kind: 'standby' }
  | { kind: 'archived'; segment: string }
  | { kind: 'missing'; segment: string; failedCount: number; lastFailedWal: string | null; lastFailedTime: string | null }
  | { kind: 'error'; detail: string };

/** "archived SEG" | "standby" | "missing SEG FAILED_COUNT LAST_FAILED_WAL LAST_FAILED_TIME" | anything else. */
export function parseArchiveProbe(text: string): ArchiveProbe {
  const t = text.trim();
  if (t === 'standby') return { kind: 'standby' };
  let m = /^archived (\S+)$/.exec(t);
  if (m) return { kind: 'archived', segment: m[1]! };
  m = /^missing (\S+) (\d+) (\S+) ?(.*)$/.exec(t);
  if (m) return { kind: 'missing', segment: m[1]!, failedCount: Number(m[2]), lastFailedWal: m[3] === '-' ? null : m[3]!, lastFailedTime: m[4] || null };
  return { kind: 'error', detail: t.replace(/^error /, '') || 'no output' };
}

/** true when archiving works, else the verification failure (with pg_stat_archiver's evidence). */
export function archiveVerdict(p: ArchiveProbe, dir: string): true | string {
  switch (p.kind) {
    case 'standby':
    case 'archived':
      return true;
    case 'missing':
      return `WAL segment ${p.segment} did not reach ${dir} within 30 s; pg_stat_archiver: failed_count ${p.failedCount}, last_failed_wal ${p.lastFailedWal ?? 'none'}${p.lastFailedTime ? ` at ${p.lastFailedTime}` : ''}`;
    case 'error':
      return `cannot check WAL archiving: ${p.detail}`;
  }
}
