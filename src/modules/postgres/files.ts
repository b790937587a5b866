/**
 * Files the pg runbooks own: whole files (the settings file) and marked blocks inside files
 * they share with people (pg_hba.conf, ~postgres/.pgpass). Content travels on stdin, so a block
 * holding a password never reaches a command line, and comparison happens on the host.
 */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { type Command, raw, sh, type StdinText, stdinText } from '../../shell/index.js';

export interface FileState {
  exists: boolean;
  mode: string | null;
  owner: string | null;
  /** The whole file (fileFact) or the current block, markers included (blockFact); '' when absent. */
  content: string;
  /** blockFact with a wanted block: the host found the block identical. */
  same: boolean;
}

export function markers(name: string): { begin: string; end: string } {
  return { begin: `# BEGIN runbook: ${name}`, end: `# END runbook: ${name}` };
}

/** Wrap lines in the markers; the result ends with a newline. */
export function wrapBlock(name: string, lines: string[]): string {
  const m = markers(name);
  return [m.begin, ...lines, m.end].join('\n') + '\n';
}

const SEP = '--runbook-content--';

function parseFileState(stdout: string): FileState {
  const i = stdout.indexOf(`${SEP}\n`);
  const head = i < 0 ? stdout : stdout.slice(0, i);
  const content = i < 0 ? '' : stdout.slice(i + SEP.length + 1);
  const kv = new Map(head.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return {
    exists: kv.get('exists') === '1',
    mode: kv.get('mode') ?? null,
    owner: kv.get('owner') ?? null,
    content,
    same: kv.get('same') === '1',
  };
}

/** `path` may start with `~user/` (expanded by the remote shell). */
function pathWord(path: string): Command {
  const m = /^~([a-z_][a-z0-9_-]*)\/(.*)$/.exec(path);
  return m ? sh`~${raw(m[1]!)}/${m[2]!}` : sh`${path}`;
}

const STAT = raw(`echo exists=1; echo "mode=$(stat -c %a "$f")"; echo "owner=$(stat -c %U "$f")"`);

/** A whole file's content and metadata. */
export function fileFact(name: string, path: string): Fact<FileState> {
  return fact({
    name,
    become: true,
    command: sh`f=${pathWord(path)}; [ -f "$f" ] || { echo exists=0; exit 0; }; ${STAT}; echo ${SEP}; cat "$f"`,
    parse(r) {
      if (r.exitCode !== 0) throw new Error(`reading ${path} failed: ${r.stderr.trim()}`);
      return parseFileState(r.stdout);
    },
  });
}

const AWK_BLOCK = (print: 'inside' | 'outside', name: string): Command => {
  const m = markers(name);
  const body = print === 'inside' ? '$0==b{s=1} s{print} $0==e{s=0}' : '$0==b{s=1} !s{print} $0==e{s=0}';
  return sh`awk -v b=${m.begin} -v e=${m.end} ${body}`;
};

/**
 * The marked block in `path`. With `wanted`, the host compares it (from stdin) with the block it
 * has, so a block holding a secret is compared without ever being printed unmasked.
 */
export function blockFact(name: string, path: string, block: string, wanted: string | StdinText): Fact<FileState> {
  const input = typeof wanted === 'string' ? stdinText`${wanted}` : wanted;
  return fact({
    name,
    become: true,
    command: sh`f=${pathWord(path)}; want=$(cat); [ -f "$f" ] || { echo exists=0; exit 0; }; ${STAT}
cur=$(${AWK_BLOCK('inside', block)} "$f")
[ "$cur" = "$want" ] && echo same=1 || echo same=0
echo ${SEP}; printf '%s\\n' "$cur"`.withStdin(input),
    parse(r) {
      if (r.exitCode !== 0) throw new Error(`reading ${path} failed: ${r.stderr.trim()}`);
      const s = parseFileState(r.stdout);
      return { ...s, content: s.content === '\n' ? '' : s.content };
    },
  });
}

export interface WriteOptions {
  mode: string;
  owner: string;
}

/** Replace `path` atomically with stdin (temp file in the same directory, then mv). */
export function writeFileCommand(path: string, content: string | StdinText, o: WriteOptions): Command {
  const input = typeof content === 'string' ? stdinText`${content}` : content;
  return sh`f=${pathWord(path)}; t=$(mktemp "$f.rb.XXXXXX") && cat > "$t" && chmod ${o.mode} "$t" && chown ${o.owner}: "$t" && mv "$t" "$f"`.withStdin(input);
}

/**
 * Put the marked block (from stdin) at the top or bottom of `path`, replacing the old one; the
 * rest of the file is kept as it is. At the top, because pg_hba.conf is first-match.
 */
export function replaceBlockCommand(path: string, block: string, content: string | StdinText, where: 'top' | 'bottom', o: WriteOptions): Command {
  const input = typeof content === 'string' ? stdinText`${content}` : content;
  const rest = sh`if [ -f "$f" ]; then ${AWK_BLOCK('outside', block)} "$f"; fi`;
  const body = where === 'top' ? sh`cat; ${rest}` : sh`${rest}; cat`;
  return sh`f=${pathWord(path)}; t=$(mktemp "$f.rb.XXXXXX") && { ${body}; } > "$t" && chmod ${o.mode} "$t" && chown ${o.owner}: "$t" && mv "$t" "$f"`.withStdin(input);
}

/** Is an active line matching `pattern` (ERE) in `path`? */
export function lineFact(name: string, path: string, pattern: string): Fact<boolean> {
  return fact({
    name,
    become: true,
    command: sh`grep -Eq ${pattern} ${path} && echo yes || echo no`,
    parse: (r) => r.stdout.trim() === 'yes',
  });
}

export function appendLineCommand(path: string, line: string): Command {
  return sh`printf '%s\\n' ${line} >> ${path}`;
}
