/**
 * YAML as Ansible reads it (PyYAML, YAML 1.1), with positions: every node can say where it is, and
 * every syntax problem becomes a BadInputError naming file:line:col.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node, type Pair, type ScalarTag, type Tags, type YAMLMap } from 'yaml';
import { BadInputError, type SourcePosition } from '../errors.js';
import { UnsafeText } from './template.js';
import { isVaultText, VaultKeyring, VaultValue } from './vault.js';

export interface YamlFile {
  file: string;
  doc: Document.Parsed;
  /** Position of a node (its first character). */
  pos(node: Node | null | undefined): SourcePosition;
  /** The plain JS value of a node (aliases and merge keys resolved). */
  value(node: Node | null | undefined): unknown;
}

// yaml's 1.1 schema is close to PyYAML's, but not equal: PyYAML has no y/n booleans, needs a dot in
// a float ("1e3" is a string), and "09" is a string. Ansible prints dates as they were written.
const PY_TESTS: Array<[sample: string, test: RegExp]> = [
  ['yes', /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/],
  ['no', /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/],
  ['1.5e+3', /^[-+]?[0-9][0-9_]*\.[0-9_]*[eE][-+][0-9]+$/],
  ['1.5', /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)$/],
  ['12', /^[-+]?(?:0|[1-9][0-9_]*)$/],
];

// Ansible's own tags: !unsafe marks a string not to template (kept as written: runbook renders only
// what it reads, and an !unsafe value is not rendered); !vault is an inline encrypted value.
function ansibleTags(file: string, vault: VaultKeyring | undefined): ScalarTag[] {
  return [
    { tag: '!unsafe', resolve: (s: string) => new UnsafeText(s) as unknown as string },
    {
      tag: '!vault',
      resolve: (s: string, onError: (message: string) => void) => {
        if (!isVaultText(s)) onError('a !vault value must be an Ansible Vault envelope ($ANSIBLE_VAULT;1.1;AES256 …)');
        // The envelope is decrypted when the var is read: --list shows it as ansible-inventory does.
        return new VaultValue(s, { file }, vault ?? new VaultKeyring()) as unknown as string;
      },
    },
  ];
}

function pyyamlTags(extra: ScalarTag[]) {
  return (tags: Tags): Tags => [...extra, ...tags.map((t) => {
    if (typeof t !== 'object' || !('test' in t) || !t.test) return t;
    const tag = t as ScalarTag;
    if (tag.tag === 'tag:yaml.org,2002:timestamp') return { ...tag, resolve: (s: string) => s };
    const match = PY_TESTS.find(([sample]) => tag.test?.test(sample));
    return match ? { ...tag, test: match[1] } : tag;
  })];
}

/** Parse one YAML document, or throw a BadInputError at the first problem (errors and warnings alike). */
export function parseYamlFile(file: string, text: string, vault?: VaultKeyring): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.1',
    merge: true,
    // yaml's own check compares every key with every other (100k keys: minutes); ours is one pass.
    uniqueKeys: false,
    prettyErrors: true,
    strict: true,
    lineCounter,
    customTags: pyyamlTags(ansibleTags(file, vault)),
  });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const at = problem.linePos?.[0];
    // yaml appends " at line L, column C" (and a code excerpt) to its messages; we print file:line:col.
    const message = problem.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const near = text.slice(problem.pos[0]).match(/^[^:\n]*/)?.[0].trim() ?? '';
    throw new BadInputError(describeYamlProblem(problem.code, message, near), { file, line: at?.line, col: at?.col });
  }
  const pos = (node: Node | null | undefined): SourcePosition => {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file };
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  const dup = firstDuplicateKey(doc);
  if (dup) throw new BadInputError(describeYamlProblem('DUPLICATE_KEY', '', keyName(dup)), pos(dup as Node));
  // Each inline vault value learns where it is, for its decryption errors.
  visit(doc, {
    Scalar(_key, node) {
      if (node.value instanceof VaultValue) node.value.pos = pos(node);
    },
  });
  const value = (node: Node | null | undefined): unknown => (node ? node.toJS(doc, { maxAliasCount: 1000 }) : null);
  return { file, doc, pos, value };
}

/** The second occurrence of a key in any map of the document, in one pass (merge keys may repeat). */
export function firstDuplicateKey(doc: Document): unknown {
  let found: unknown;
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (isMergeKey(pair.key)) continue;
        const k = isScalar(pair.key) ? `${typeof pair.key.value}:${String(pair.key.value)}` : `node:${String(pair.key)}`;
        if (seen.has(k)) {
          found = pair.key;
          return visit.BREAK;
        }
        seen.add(k);
      }
      return undefined;
    },
  });
  return found;
}

function describeYamlProblem(code: string, message: string, near: string): string {
  if (code === 'DUPLICATE_KEY') return `duplicate key ${JSON.stringify(near)} (each key may appear once)`;
  if (code === 'TAG_RESOLVE_FAILED') return message;
  if (code === 'TAB_AS_INDENT') return `a tab in indentation (YAML allows only spaces): ${message}`;
  return `invalid YAML: ${message}`;
}

/** A map key as Python would name it (PyYAML keeps booleans and numbers as such). */
export function keyName(node: unknown): string {
  const v = isScalar(node) ? node.value : node;
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (v === null || v === undefined) return 'None';
  return String(v);
}

export { isMap, isScalar };

function isMergeKey(key: unknown): boolean {
  const v = isScalar(key) ? key.value : key;
  return v === '<<' || (typeof v === 'symbol' && v.description === '<<');
}

/**
 * A mapping's pairs with `<<: *anchor` merges expanded, as PyYAML does: explicit keys win over
 * merged ones, and an earlier merge source over a later one. Each pair keeps its own position.
 */
export function mapEntries(y: YamlFile, map: YAMLMap): Pair[] {
  const own = new Map<string, Pair>();
  const merged = new Map<string, Pair>();
  for (const pair of map.items as Pair[]) {
    if (!isMergeKey(pair.key)) {
      own.set(keyName(pair.key), pair);
      continue;
    }
    const value = pair.value as Node | null;
    const sources = isSeq(value) ? (value.items as Node[]) : [value];
    for (const source of sources) {
      const target = isAlias(source) ? source.resolve(y.doc) : source;
      if (!isMap(target)) throw new BadInputError('a << merge key needs a mapping (or a list of them)', y.pos(source));
      for (const p of mapEntries(y, target)) {
        const k = keyName(p.key);
        if (!merged.has(k)) merged.set(k, p);
      }
    }
  }
  return [...[...merged].filter(([k]) => !own.has(k)).map(([, p]) => p), ...own.values()];
}

/** A node with an alias followed to what it names. */
export function deref(y: YamlFile, node: Node | null | undefined): Node | null {
  if (isAlias(node)) return (node.resolve(y.doc) as Node | undefined) ?? null;
  return node ?? null;
}
