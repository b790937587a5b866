/**
 * File building blocks: line in file, managed block, file content/mode/owner, directory.
 * Each returns an Operation (facts + a pure plan); the plan functions are exported for unit tests
 * from fixture facts. Writes are atomic (temp file in the same directory, then mv), and content that
 * holds secrets travels on stdin and is masked in plans and diffs.
 */
import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { blocked, change, noop } from '../engine/define.js';
import type { Fact, FactMap, Operation, Plan } from '../engine/types.js';
import { fact } from '../engine/define.js';
import { type FileInfo, fileContent, fileInfo } from './file-facts.js';
import { type Command, type CommandPart, type StdinText, mergeText, pathWord, raw, sh } from '../shell/command.js';
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
    commands.push(sh`chmod ${normMode(want.mode)} -- ${pathWord(path)}`);
    what.push(`mode ${have?.mode ?? '-'} → ${normMode(want.mode)}`);
  }
  const ownerDiff = want.owner && have?.owner !== want.owner;
  const groupDiff = want.group && have?.group !== want.group;
  if (ownerDiff || groupDiff) {
    const spec = `${want.owner ?? ''}${want.group ? `:${want.group}` : ''}`;
    commands.push(sh`chown ${spec} -- ${pathWord(path)}`);
    what.push(`owner ${have?.owner ?? '-'}:${have?.group ?? '-'} → ${spec}`);
  }
  return { commands, what };
}

/**
 * Write `content` to `path` atomically: a temp file next to it (same filesystem), mode/owner set,
 * an optional validation of the temp file, then mv. Content goes on stdin, never in argv.
 */
export function atomicWrite(path: string, content: Content, opts: Ownership & { validate?: (file: Command) => Command; existing?: boolean }): Command {
  const p = pathWord(path);
  return sh`tmp=$(mktemp ${pathWord(`${path}.rb-XXXXXX`)}) && trap 'rm -f "$tmp"' EXIT && cat > "$tmp" && ${tempOwnership(p, opts)} && mv -f "$tmp" ${p}`.withStdin(content);
}

/** Mode, owner and validation of "$tmp" before it replaces `p`: as asked, else as the existing file, else 0644. */
function tempOwnership(p: Command, o: Ownership & { validate?: (file: Command) => Command; existing?: boolean }): Command {
  const modeCmd = o.mode ? sh`chmod ${normMode(o.mode)} "$tmp"` : o.existing ? sh`chmod --reference ${p} "$tmp"` : sh`chmod 0644 "$tmp"`;
  const chown = o.owner || o.group ? sh` && chown ${`${o.owner ?? ''}${o.group ? `:${o.group}` : ''}`} "$tmp"` : o.existing ? sh` && chown --reference ${p} "$tmp"` : raw('');
  const validate = o.validate ? sh` && { ${o.validate(raw('"$tmp"'))} ; }` : raw('');
  return sh`${modeCmd}${chown}${validate}`;
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
    return change(`remove ${a.path}`, [sh`rm -f -- ${pathWord(a.path)}`]);
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
    return change(`create directory ${a.path}`, [sh`mkdir -p -- ${pathWord(a.path)}`, ...own.commands]);
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
  /**
   * present: a line matching it already does what `line` would (another spelling of the same
   * directive, e.g. `include_dir 'conf.d'`): it is left as it is and nothing is added.
   */
  found?: RegExp;
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
    const same = a.found ? lines.slice(0, scope).find((l) => a.found!.test(l)) : undefined;
    if (same !== undefined) return { noop: `${a.path} has ${JSON.stringify(same)}` };
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

/**
 * The one managed-block editor (blockinfile): lines between "# BEGIN runbook NAME" and
 * "# END runbook NAME". A block in the older "# BEGIN runbook: NAME" format (written by earlier
 * versions' PostgreSQL editor, still on hosts) is found, compared and replaced the same way; the
 * new text always carries the current markers.
 */
export interface BlockArgs extends Ownership {
  /** `~user/…` is that user's home (expanded by the host's shell). */
  path: string;
  /** The block's lines (without markers); may hold secrets. */
  block: Content;
  /** Names the block in its markers: "# BEGIN runbook <marker>" / "# END runbook <marker>". */
  marker: string;
  /** Comment prefix for the marker lines. Default "#". */
  comment?: string;
  state?: 'present' | 'absent';
  /** Where a block the file does not have yet goes: 'bottom' (default) or 'top' (first-match files: pg_hba.conf). An existing block is replaced where it is. */
  insert?: 'top' | 'bottom';
  /** Check the new file before it replaces the old: gets the temp file's path, e.g. f => sh`visudo -cf ${f}`. */
  validate?: (file: Command) => Command;
}

/** What the host reports about the block: compared there, so a block holding a secret is never printed. */
export interface BlockState {
  exists: boolean;
  /** Set when the path exists and is no regular file. */
  notFile?: boolean;
  /** Octal, 4 digits, and owner/group: when the file exists. */
  mode?: string;
  owner?: string;
  group?: string;
  /** Blocks with this marker in the file, in either marker format. */
  blocks: number;
  /** A block is in the older "# BEGIN runbook: NAME" format. */
  legacy: boolean;
  /** A BEGIN marker without its END: the file is left alone (an edit would drop the rest of it). */
  open: boolean;
  /** The file holds exactly the wanted block (markers included). */
  same: boolean;
}
export interface BlockFacts {
  block: BlockState;
  /** The whole file (null: absent), for the diff; not read when the block holds secrets (the file may hold others). */
  current?: string | null;
}

export function markers(a: Pick<BlockArgs, 'marker' | 'comment'>): { begin: string; end: string } {
  const c = a.comment ?? '#';
  return { begin: `${c} BEGIN runbook ${a.marker}`, end: `${c} END runbook ${a.marker}` };
}
/** The older format, read (and replaced) but never written. */
export function legacyMarkers(a: Pick<BlockArgs, 'marker' | 'comment'>): { begin: string; end: string } {
  const c = a.comment ?? '#';
  return { begin: `${c} BEGIN runbook: ${a.marker}`, end: `${c} END runbook: ${a.marker}` };
}

const hasSecrets = (c: Content) => typeof c !== 'string' && c.parts.some((p) => 'secret' in p);

/** The exact text of the block with markers and a final newline. */
export function blockText(a: BlockArgs, reveal: boolean): string {
  const { begin, end } = markers(a);
  const body = reveal ? revealContent(a.block) : displayContent(a.block);
  return `${begin}\n${body.replace(/\n$/, '')}\n${end}\n`;
}

/** The block with its markers as stdin text, secrets kept as secrets (for the host-side comparison). */
export function blockStdin(a: BlockArgs): StdinText {
  const { begin, end } = markers(a);
  return { parts: mergeText([{ text: `${begin}\n` }, ...endsWithOneNewline(a.block).parts, { text: `${end}\n` }]) };
}

/** Replace (or insert, or remove) the block in a text, as blockCommand does on the host: the diff's "after" side. */
export function withBlock(current: string, a: BlockArgs, present: boolean): string {
  const { begin, end } = markers(a);
  const old = legacyMarkers(a);
  const lines = current === '' ? [] : current.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let inBlock = false;
  let done = false;
  const block = blockText(a, false).replace(/\n$/, '').split('\n');
  const hasBlock = lines.some((l) => l === begin || l === old.begin);
  if (present && a.insert === 'top' && !hasBlock) {
    out.push(...block);
    done = true;
  }
  for (const l of lines) {
    if (!inBlock && (l === begin || l === old.begin)) {
      inBlock = true;
      continue;
    }
    if (inBlock && (l === end || l === old.end)) {
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
  const s = f.block;
  const present = (a.state ?? 'present') === 'present';
  if (s.notFile) return blocked(`${a.path} exists and is not a regular file`);
  if (s.open) return blocked(`${a.path}: block ${a.marker} has a BEGIN marker and no END marker; fix the file by hand`);
  if (!present && s.blocks === 0) return noop(`no block ${a.marker} in ${a.path}`);
  if (present && s.same) {
    const have: FileInfo = { exists: true, ...(s.mode ? { mode: s.mode } : {}), ...(s.owner ? { owner: s.owner } : {}), ...(s.group ? { group: s.group } : {}) };
    const own = ownershipCommands(a.path, have, a);
    return own.commands.length ? change(`${a.path}: ${own.what.join(', ')}`, own.commands) : noop(`block ${a.marker} in ${a.path} is up to date`);
  }
  const summary = !present
    ? `remove block ${a.marker} from ${a.path}`
    : s.blocks === 0
      ? `add block ${a.marker} to ${a.path}${a.insert === 'top' ? ' (at the top)' : ''}`
      : `update block ${a.marker} in ${a.path}${s.legacy ? ' (and its markers, from the older "runbook:" format)' : ''}`;
  // A block holding a secret is compared on the host and never read back: its old text may hold
  // a secret this run does not know (a rotated password), which no masking could hide.
  const diff = hasSecrets(a.block)
    ? `${a.path}: block ${a.marker} holds a secret: compared on the host, never read back, so no diff is shown\n`
    : f.current !== undefined ? fileDiff(a.path, f.current, withBlock(f.current ?? '', a, present)) : undefined;
  return change(summary, [blockCommand(a, present, s.exists)], diff);
}

const BLOCK_ENV = (a: BlockArgs): Command => {
  const { begin, end } = markers(a);
  const old = legacyMarkers(a);
  return sh`RB_B=${begin} RB_E=${end} RB_OB=${old.begin} RB_OE=${old.end}`;
};
const IS_BEGIN = '($0 == ENVIRON["RB_B"] || $0 == ENVIRON["RB_OB"])';
const IS_END = '($0 == ENVIRON["RB_E"] || $0 == ENVIRON["RB_OE"])';

/**
 * The remote edit: awk copies the file, dropping every block with this marker (either format) and
 * putting the new one (read from stdin, so secrets stay out of argv) where the first one was, or at
 * the top/bottom; then mode/owner, validation, mv. Both temp files sit next to the file (mktemp's
 * 0600, removed on exit whatever happens). Markers reach awk through the environment (awk -v would
 * interpret backslashes). An unterminated block stops the edit (awk exits 3) instead of dropping
 * the rest of the file.
 */
export function blockCommand(a: BlockArgs, present: boolean, exists: boolean): Command {
  const { begin } = markers(a);
  const old = legacyMarkers(a);
  const p = pathWord(a.path);
  const awk = `function emit() { if (want == "1") { print ENVIRON["RB_B"]; while ((getline l < blk) > 0) print l; close(blk); print ENVIRON["RB_E"] } done = 1 }
BEGIN { if (top == "1") emit() }
!skip && ${IS_BEGIN} { skip = 1; next }
skip && ${IS_END} { skip = 0; if (!done) emit(); next }
skip { next }
{ print }
END { if (skip) exit 3; if (!done) emit() }`;
  const src = exists ? p : raw('/dev/null');
  const top = present && a.insert === 'top' ? (exists ? sh`top=1; grep -qxF -e ${begin} -e ${old.begin} ${p} && top=0; ` : raw('top=1; ')) : raw('top=0; ');
  const temp = pathWord(`${a.path}.rb-XXXXXX`);
  return sh`trap 'rm -f \${tmp:+"$tmp"} \${blk:+"$blk"}' EXIT; ${top}blk=$(mktemp ${temp}) && tmp=$(mktemp ${temp}) && cat > "$blk" && ${BLOCK_ENV(a)} awk -v blk="$blk" -v want=${present ? '1' : '0'} -v top="$top" ${awk} ${src} > "$tmp" && ${tempOwnership(p, { ...a, existing: exists })} && mv -f "$tmp" ${p}`.withStdin(endsWithOneNewline(a.block));
}

/**
 * The block's lines as written: exactly one final newline, whether or not the author ended the
 * content with one (blockText, which the host compares with, drops it the same way).
 */
function endsWithOneNewline(block: Content): StdinText {
  if (typeof block === 'string') return { parts: [{ text: `${block.replace(/\n$/, '')}\n` }] };
  const parts: CommandPart[] = [...block.parts];
  const last = parts[parts.length - 1];
  if (last && 'text' in last) parts[parts.length - 1] = { text: last.text.replace(/\n$/, '') };
  return { parts: mergeText([...parts, { text: '\n' }]) };
}

/** Parse blockStateFact's output. */
export function parseBlockState(stdout: string, exitCode: number | null, path: string, stderr = ''): BlockState {
  if (exitCode !== 0) throw new Error(`cannot read ${path}: ${stderr.trim() || `exit ${exitCode}`}`);
  const lines = stdout.trim().split('\n');
  const none: BlockState = { exists: false, blocks: 0, legacy: false, open: false, same: false };
  if (lines[0] === 'absent') return none;
  if (lines[0] === 'notfile') return { ...none, exists: true, notFile: true };
  const [mode, owner, group] = (lines[0] ?? '').split(' ');
  const [blocks, legacy, open] = (lines[1] ?? '').split(' ').map(Number);
  if (!mode || !owner || !group || blocks === undefined || Number.isNaN(blocks) || (lines[2] !== 'same' && lines[2] !== 'differs')) throw new Error(`unexpected output reading ${path}: ${JSON.stringify(stdout)}`);
  return { exists: true, mode: mode.padStart(4, '0'), owner, group, blocks, legacy: legacy === 1, open: open === 1, same: lines[2] === 'same' };
}

/**
 * The block as the host has it: counts (either marker format) and whether it is exactly the
 * wanted one. The wanted text goes on stdin and the host compares (`[ "$cur" = "$want" ]`), so a
 * block holding a secret is compared without its text, or a hash of it, ever leaving the host.
 */
export function blockStateFact(a: BlockArgs): Fact<BlockState> {
  const want = (a.state ?? 'present') === 'present' ? blockStdin(a) : { parts: [{ text: '' }] };
  const count = `${IS_BEGIN} { if (!inb) { n++; if ($0 == ENVIRON["RB_OB"]) old = 1; inb = 1 } next } inb && ${IS_END} { inb = 0 } END { print n + 0, old + 0, inb + 0 }`;
  const print = `!inb && ${IS_BEGIN} { inb = 1 } inb { print } inb && ${IS_END} { inb = 0 }`;
  return fact({
    name: `file.block ${a.path} ${a.marker}`,
    ...(a.become !== undefined ? { become: a.become } : {}),
    command: sh`f=${pathWord(a.path)}; want=$(cat)
if [ ! -e "$f" ] && [ ! -L "$f" ]; then echo absent; exit 0; fi
if [ ! -f "$f" ]; then echo notfile; exit 0; fi
stat -c '%a %U %G' -- "$f" || exit 3
${BLOCK_ENV(a)} awk ${count} "$f" || exit 3
cur=$(${BLOCK_ENV(a)} awk ${print} "$f") || exit 3
if [ "$cur" = "$want" ]; then echo same; else echo differs; fi`.withStdin(want),
    parse: (r) => parseBlockState(r.stdout, r.exitCode, a.path, r.stderr),
  });
}

export function managedBlock(a: BlockArgs): Operation<BlockFacts> {
  const facts: FactMap<BlockFacts> = { block: blockStateFact(a) };
  if (!hasSecrets(a.block)) facts.current = fileContent(a.path, a.become);
  return { facts, plan: (f) => planBlock(a, f) };
}
