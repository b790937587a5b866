/**
 * YAML as Ansible reads it (PyYAML, YAML 1.1), with positions: every node can say where it is, and
 * every syntax problem becomes a BadInputError naming file:line:col.
 */
import { isMap, isScalar, LineCounter, parseDocument, type Document, type Node, type ScalarTag, type Tags } from 'yaml';
import { BadInputError, type SourcePosition } from '../errors.js';

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

// Ansible's own tags: !unsafe marks a string not to template (a plain string here); vault needs a key we do not have.
const ANSIBLE_TAGS: ScalarTag[] = [
  { tag: '!unsafe', resolve: (s: string) => s },
  {
    tag: '!vault',
    resolve: (s: string, onError: (message: string) => void) => {
      onError('Ansible Vault values are not supported: give the value another way (an environment variable, a prompt)');
      return s;
    },
  },
];

function pyyamlTags(tags: Tags): Tags {
  return [...ANSIBLE_TAGS, ...tags.map((t) => {
    if (typeof t !== 'object' || !('test' in t) || !t.test) return t;
    const tag = t as ScalarTag;
    if (tag.tag === 'tag:yaml.org,2002:timestamp') return { ...tag, resolve: (s: string) => s };
    const match = PY_TESTS.find(([sample]) => tag.test?.test(sample));
    return match ? { ...tag, test: match[1] } : tag;
  })];
}

/** Parse one YAML document, or throw a BadInputError at the first problem (errors and warnings alike). */
export function parseYamlFile(file: string, text: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.1',
    merge: true,
    uniqueKeys: true,
    prettyErrors: true,
    strict: true,
    lineCounter,
    customTags: pyyamlTags,
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
  const value = (node: Node | null | undefined): unknown => (node ? node.toJS(doc, { maxAliasCount: 1000 }) : null);
  return { file, doc, pos, value };
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
