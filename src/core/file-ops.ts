/**
 * File building blocks: line in file, managed block, file content/mode/owner, directory.
 * Each returns an Operation (facts + a pure plan); the plan functions are exported for unit tests
 * from fixture facts. Writes are atomic (temp file in the same directory, then mv), and content that
 * holds secrets travels on stdin and is masked in plans and diffs.
 */
import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { blocked, change, noop } from '../engine/define.js';
import type { Fact, Operation, Plan } from '../engine/types.js';
import { fact } from '../engine/define.js';
import { type FileInfo, fileContent, fileInfo } from './file-facts.js';
import { type Command, type StdinText, raw, sh } from '../shell/command.js';
import { MASK, maskSecrets } from '../shell/secret.js';

/** File content: plain text, or text holding secrets (stdinText`…${secret}…`). */
export type Content = string | StdinText;

export function revealContent(c: Content): string {
  return typeof c === 'string' ? c : c.parts.map((p) => ('text' in p ? p.text : p.secret.reveal())).join('');
}
export function displayContent(c: Content): string {
  return maskSecrets(typeof c === 'string' ? c : c.parts.map((p) => ('text' in p ? p.text : MASK)).join(''));
}
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export interface Ownership {
  /** Octal string, e.g. "0640". */
  mode?: string;
  owner?: string;
  group?: string;
  become?: boolean | string;
}

/** A unified diff with secrets masked on both sides. */
export function fileDiff(path: string, before: string | null, after: string): string {
  return createTwoFilesPatch(`${path} (current)`, `${path} (wanted)`, maskSecrets(before ?? ''), maskSecrets(after), '', '', { context: 3 });
}

function normMode(mode: string): string {
  if (!/^[0-7]{3,4}$/.test(mode)) throw new TypeError(`mode ${mode}: expected octal like 0644`);
  return mode.padStart(4, '0');
}

/** Commands that bring mode/owner/group in line with `want` given what `have` is. */
export function ownershipCommands(path: string, have: FileInfo | undefined, want: Ownership): { commands: Command[]; what: string[] } {
  const commands: Command[] = [];
  const what: string[] = [];
  if (want.mode && (!have?.mode || normMode(have.mode) !== normMode(want.mode))) {
    commands.push(sh`chmod ${normMode(want.mode)} -- ${path}`);
    what.push(`mode ${have?.mode ?? '-'} → ${normMode(want.mode)}`);
  }
  const ownerDiff = want.owner && have?.owner !== want.owner;
  const groupDiff = want.group && have?.group !== want.group;
  if (ownerDiff || groupDiff) {
    const spec = `${want.owner ?? ''}${want.group ? `:${want.group}` : ''}`;
    commands.push(sh`chown ${spec} -- ${path}`);
    what.push(`owner ${have?.owner ?? '-'}:${have?.group ?? '-'} → ${spec}`);
  }
  return { commands, what };
}

/**
 * Write `content` to `path` atomically: a temp file next to it (same filesystem), mode/owner set,
 * an optional validation of the temp file, then mv. Content goes on stdin, never in argv.
 */
export function atomicWrite(path: string, content: Content, opts: Ownership & { validate?: (file: Command) => Command; existing?: boolean }): Command {
  const modeCmd = opts.mode ? sh`chmod ${normMode(opts.mode)} "$tmp"` : opts.existing ? sh`chmod --reference=${path} "$tmp"` : sh`chmod 0644 "$tmp"`;
  const chown = opts.owner || opts.group ? sh` && chown ${`${opts.owner ?? ''}${opts.group ? `:${opts.group}` : ''}`} "$tmp"` : opts.existing ? sh` && chown --reference=${path} "$tmp"` : raw('');
  const validate = opts.validate ? sh` && { ${opts.validate(raw('"$tmp"'))} ; } ` : raw('');
  return sh`tmp=$(mktemp ${`${path}.rb-XXXXXX`}) && trap 'rm -f "$tmp"' EXIT && cat > "$tmp" && ${modeCmd}${chown}${validate} && mv -f "$tmp" ${path}`.withStdin(content);
}

// ---------------------------------------------------------------- file

export interface FileArgs extends Ownership {
  path: string;
  /** The whole content; omit to manage only mode/owner of an existing file. */
  content?: Content;
  state?: 'present' | 'absent';
  validate?: (file: Command) => Command;
}
export interface FileFacts {
  info: FileInfo;
  /** Current content, for the diff (masked). */
  current: string | null;
}

export function planFile(a: FileArgs, f: FileFacts): Plan {
  if (a.state === 'absent') {
    if (!f.info.exists) return noop(`${a.path} is absent`);
    return change(`remove ${a.path}`, [sh`rm -f -- ${a.path}`]);
  }
  if (f.info.exists && f.info.type !== 'file') return blocked(`${a.path} exists and is a ${f.info.type}, not a file`);
  if (a.content === undefined) {
    if (!f.info.exists) return blocked(`${a.path} does not exist and no content was given`);
    const own = ownershipCommands(a.path, f.info, a);
    return own.commands.length ? change(`${a.path}: ${own.what.join(', ')}`, own.commands) : noop(`${a.path} has the wanted mode and owner`);
  }
  const wanted = revealContent(a.content);
  if (!f.info.exists || f.info.sha256 !== sha256(wanted)) {
    const diff = fileDiff(a.path, f.current, displayContent(a.content));
    return change(
      f.info.exists ? `update ${a.path}` : `create ${a.path}`,
      [atomicWrite(a.path, a.content, { ...a, existing: f.info.exists })],
      diff,
    );
  }
  const own = ownershipCommands(a.path, f.info, a);
  return own.commands.length ? change(`${a.path}: ${own.what.join(', ')}`, own.commands) : noop(`${a.path} is up to date`);
}

export function file(a: FileArgs): Operation<FileFacts> {
  return { facts: { info: fileInfo(a.path, a.become), current: fileContent(a.path, a.become) }, plan: (f) => planFile(a, f) };
}

// ---------------------------------------------------------------- directory

export interface DirectoryArgs extends Ownership {
  path: string;
}
export function planDirectory(a: DirectoryArgs, info: FileInfo): Plan {
  if (info.exists && info.type !== 'directory') return blocked(`${a.path} exists and is a ${info.type}, not a directory`);
  if (!info.exists) {
    const own = ownershipCommands(a.path, undefined, a);
    return change(`create directory ${a.path}`, [sh`mkdir -p -- ${a.path}`, ...own.commands]);
  }
  const own = ownershipCommands(a.path, info, a);
  return own.commands.length ? change(`${a.path}: ${own.what.join(', ')}`, own.commands) : noop(`directory ${a.path} is as wanted`);
}
export function directory(a: DirectoryArgs): Operation<{ info: FileInfo }> {
  return { facts: { info: fileInfo(a.path, a.become) }, plan: (f) => planDirectory(a, f.info) };
}

// ---------------------------------------------------------------- line in file

export interface LineArgs extends Ownership {
  path: string;
  /** The wanted line (present), or the line to remove (absent, without regexp). */
  line?: string;
  /** Lines matching it are replaced (present: the last match) or removed (absent). */
  regexp?: RegExp;
  state?: 'present' | 'absent';
  /** Create the file when missing (present). Default true. */
  create?: boolean;
  /** Replace the first match instead of the last (sshd takes the first value it reads). */
  first?: boolean;
  /** Only lines before the first line matching it count, and a missing line goes there (sshd's first Match block). */
  before?: RegExp;
}

/**
 * The one line edit, pure: the text with the line in place (or removed), and what changed; or the
 * reason it is already so. `current` is the file's text ('' for an empty file).
 */
export function editLine(current: string, a: LineArgs): { text: string; summary: string } | { noop: string } {
  const state = a.state ?? 'present';
  const trailingNewline = current.endsWith('\n') || current === '';
  const lines = current === '' ? [] : current.replace(/\n$/, '').split('\n');
  const matches = (l: string) => (a.regexp ? a.regexp.test(l) : l === a.line);
  // Only lines before the first `before` line are looked at (e.g. sshd's global section).
  const stop = a.before ? lines.findIndex((l) => a.before!.test(l)) : -1;
  const scope = stop >= 0 ? stop : lines.length;
  let next: string[];
  let summary: string;
  if (state === 'absent') {
    next = lines.filter((l, i) => i >= scope || !matches(l));
    if (next.length === lines.length) return { noop: `no line ${a.regexp ? `matching ${a.regexp}` : JSON.stringify(a.line)} in ${a.path}` };
    summary = `remove ${lines.length - next.length} line(s) from ${a.path}`;
  } else {
    let idx = -1;
    for (let i = 0; i < scope; i++) if (matches(lines[i]!) && (idx < 0 || !a.first)) idx = i;
    if (idx >= 0 && lines[idx] === a.line) return { noop: `line ${JSON.stringify(a.line)} is in ${a.path}` };
    if (idx < 0 && lines.slice(0, scope).includes(a.line!)) return { noop: `line ${JSON.stringify(a.line)} is in ${a.path}` };
    next = [...lines];
    if (idx >= 0) {
      next[idx] = a.line!;
      summary = `replace line ${idx + 1} of ${a.path}`;
    } else if (stop >= 0) {
      next.splice(stop, 0, a.line!);
      summary = `insert line ${stop + 1} of ${a.path}`;
    } else {
      next.push(a.line!);
      summary = `add line to ${a.path}`;
    }
  }
  return { text: next.length ? `${next.join('\n')}${trailingNewline || state === 'present' ? '\n' : ''}` : '', summary };
}

export function planLine(a: LineArgs, current: string | null, info?: FileInfo): Plan {
  const state = a.state ?? 'present';
  if (state === 'present' && a.line === undefined) throw new TypeError('lineInFile: line is required when state is present');
  if (current === null) {
    if (state === 'absent') return noop(`${a.path} does not exist`);
    if (a.create === false) return blocked(`${a.path} does not exist`);
    const wanted = `${a.line}\n`;
    return change(`create ${a.path} with line ${JSON.stringify(a.line)}`, [atomicWrite(a.path, wanted, a)], fileDiff(a.path, null, wanted));
  }
  if (current.includes(MASK)) return blocked(`${a.path} holds masked secret text; manage it with file() or managedBlock() instead`);
  const e = editLine(current, a);
  if ('noop' in e) return noop(e.noop);
  return change(e.summary, [atomicWrite(a.path, e.text, { ...a, existing: info?.exists ?? true })], fileDiff(a.path, current, e.text));
}

export function lineInFile(a: LineArgs): Operation<{ current: string | null; info: FileInfo }> {
  return { facts: { current: fileContent(a.path, a.become), info: fileInfo(a.path, a.become) }, plan: (f) => planLine(a, f.current, f.info) };
}

// ---------------------------------------------------------------- managed block

export interface BlockArgs extends Ownership {
  path: string;
  /** The block's lines (without markers); may hold secrets. */
  block: Content;
  /** Names the block in its markers: "# BEGIN runbook <marker>" / "# END runbook <marker>". */
  marker: string;
  /** Comment prefix for the marker lines. Default "#". */
  comment?: string;
  state?: 'present' | 'absent';
  /** Check the new file before it replaces the old: gets the temp file's path, e.g. f => sh`visudo -cf ${f}`. */
  validate?: (file: Command) => Command;
}
export interface BlockFacts {
  /** Current content (masked), for the diff. */
  current: string | null;
  /** sha256 of the current block's lines between the markers (markers included), or null without block. */
  blockSha: string | null;
}

export function markers(a: Pick<BlockArgs, 'marker' | 'comment'>): { begin: string; end: string } {
  const c = a.comment ?? '#';
  return { begin: `${c} BEGIN runbook ${a.marker}`, end: `${c} END runbook ${a.marker}` };
}

/** The exact text of the block with markers and a final newline. */
export function blockText(a: BlockArgs, reveal: boolean): string {
  const { begin, end } = markers(a);
  const body = reveal ? revealContent(a.block) : displayContent(a.block);
  return `${begin}\n${body.replace(/\n$/, '')}\n${end}\n`;
}

/** Replace (or append, or remove) the block in a text: used for the diff's "after" side. */
export function withBlock(current: string, a: BlockArgs, present: boolean): string {
  const { begin, end } = markers(a);
  const lines = current === '' ? [] : current.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let inBlock = false;
  let done = false;
  const block = blockText(a, false).replace(/\n$/, '').split('\n');
  for (const l of lines) {
    if (l === begin) {
      inBlock = true;
      continue;
    }
    if (inBlock && l === end) {
      inBlock = false;
      if (present && !done) out.push(...block);
      done = true;
      continue;
    }
    if (!inBlock) out.push(l);
  }
  if (present && !done) out.push(...block);
  return out.length ? `${out.join('\n')}\n` : '';
}

export function planBlock(a: BlockArgs, f: BlockFacts): Plan {
  const present = (a.state ?? 'present') === 'present';
  if (!present) {
    if (f.blockSha === null) return noop(`no block ${a.marker} in ${a.path}`);
  } else if (f.blockSha === sha256(blockText(a, true))) return noop(`block ${a.marker} in ${a.path} is up to date`);
  const after = withBlock(f.current ?? '', a, present);
  const summary = !present ? `remove block ${a.marker} from ${a.path}` : f.blockSha === null ? `add block ${a.marker} to ${a.path}` : `update block ${a.marker} in ${a.path}`;
  return change(summary, [blockCommand(a, present, f.current !== null)], fileDiff(a.path, f.current, after));
}

/**
 * The remote edit: awk copies the file, dropping the old block and putting the new one (read from
 * stdin, so secrets stay out of argv) where it was, or at the end; then validate and mv.
 * Markers reach awk through the environment (awk -v would interpret backslashes).
 */
export function blockCommand(a: BlockArgs, present: boolean, exists: boolean): Command {
  const { begin, end } = markers(a);
  const awk = `function emit() { if (want == "1") { print ENVIRON["RB_B"]; while ((getline l < blk) > 0) print l; close(blk); print ENVIRON["RB_E"] } done = 1 }
$0 == ENVIRON["RB_B"] { skip = 1; next }
skip && $0 == ENVIRON["RB_E"] { skip = 0; if (!done) emit(); next }
skip { next }
{ print }
END { if (!done) emit() }`;
  const src = exists ? sh`${a.path}` : raw('/dev/null');
  const body = endsWithOneNewline(a.block);
  const modeCmd = a.mode ? sh`chmod ${normMode(a.mode)} "$tmp"` : exists ? sh`chmod --reference=${a.path} "$tmp"` : sh`chmod 0644 "$tmp"`;
  const chown = a.owner || a.group ? sh` && chown ${`${a.owner ?? ''}${a.group ? `:${a.group}` : ''}`} "$tmp"` : exists ? sh` && chown --reference=${a.path} "$tmp"` : raw('');
  const validate = a.validate ? sh` && { ${a.validate(raw('"$tmp"'))} ; }` : raw('');
  return sh`blk=$(mktemp) && tmp=$(mktemp ${`${a.path}.rb-XXXXXX`}) && trap 'rm -f "$tmp" "$blk"' EXIT && cat > "$blk" && RB_B=${begin} RB_E=${end} awk -v blk="$blk" -v want=${present ? '1' : '0'} ${awk} ${src} > "$tmp" && ${modeCmd}${chown}${validate} && mv -f "$tmp" ${a.path}`.withStdin(body);
}

/**
 * The block's lines as written: exactly one final newline, whether or not the author ended the
 * content with one (blockText, which the wanted sha comes from, drops it the same way).
 */
function endsWithOneNewline(block: Content): string | StdinText {
  if (typeof block === 'string') return `${block.replace(/\n$/, '')}\n`;
  const parts = [...block.parts];
  const last = parts[parts.length - 1];
  if (last && 'text' in last) parts[parts.length - 1] = { text: last.text.replace(/\n$/, '') };
  return { parts: [...parts, { text: '\n' }] };
}

/** sha256 of the block between (and including) the markers, or "none". */
export function blockShaFact(a: BlockArgs): Fact<string | null> {
  const { begin, end } = markers(a);
  return fact({
    name: `file.block ${a.path} ${a.marker}`,
    ...(a.become !== undefined ? { become: a.become } : {}),
    command: sh`if [ -f ${a.path} ] && grep -qxF -- ${begin} ${a.path}; then RB_B=${begin} RB_E=${end} awk '$0 == ENVIRON["RB_B"] { p = 1 } p { print } p && $0 == ENVIRON["RB_E"] { exit }' ${a.path} | sha256sum | cut -d' ' -f1; else echo none; fi`,
    parse: (r) => {
      if (r.exitCode !== 0) throw new Error(`cannot read ${a.path}: ${r.stderr.trim()}`);
      const v = r.stdout.trim();
      return v === 'none' ? null : v;
    },
  });
}

export function managedBlock(a: BlockArgs): Operation<BlockFacts> {
  return { facts: { current: fileContent(a.path, a.become), blockSha: blockShaFact(a) }, plan: (f) => planBlock(a, f) };
}
