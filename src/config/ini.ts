/**
 * INI as Python's configparser reads ansible.cfg (Ansible: `ConfigParser(inline_comment_prefixes=(';',))`):
 * `[section]`, `key = value` or `key: value`, keys lower-cased, `#`/`;` comment lines, `;` inline
 * comments after whitespace, indented lines continuing a value, duplicate sections and keys refused.
 * Every value keeps its line, and every refusal names file:line (exit 2).
 */
import { BadInputError } from '../errors.js';

export interface IniValue {
  value: string;
  line: number;
}

/** section → key → value; `DEFAULT` holds configparser's defaults section as written. */
export type IniFile = Map<string, Map<string, IniValue>>;

const SECTION = /^\[(.+)\]/;
const OPTION = /^([^=:]+?)\s*[=:]\s*(.*)$/;

/** Drop a `;` comment that follows whitespace (configparser's inline_comment_prefixes). */
function withoutInlineComment(text: string): string {
  const m = /(^|\s);/.exec(text);
  return (m ? text.slice(0, m.index) : text).trimEnd();
}

export function parseIni(text: string, file: string): IniFile {
  const sections: IniFile = new Map();
  let section: Map<string, IniValue> | undefined;
  let sectionName = '';
  /** The value a more-indented line continues, and the key line's indent. */
  let open: { entry: IniValue; indent: number } | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((rawLine, i) => {
    const line = i + 1;
    const trimmed = rawLine.trim();
    if (trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const content = withoutInlineComment(rawLine);
    if (content.trim() === '') {
      // An empty line inside a value is kept only if more value follows (configparser trims the end).
      if (open) open.entry.value += '\n';
      return;
    }
    const indent = content.length - content.trimStart().length;
    if (open && indent > open.indent) {
      open.entry.value = `${open.entry.value.replace(/\n+$/, '')}\n${content.trim()}`;
      return;
    }
    if (open) open.entry.value = open.entry.value.replace(/\n+$/, '');
    open = undefined;
    const header = SECTION.exec(content.trim());
    if (header) {
      sectionName = header[1]!;
      if (sections.has(sectionName)) throw new BadInputError(`section [${sectionName}] already appeared earlier in the file`, { file, line });
      section = new Map();
      sections.set(sectionName, section);
      return;
    }
    if (!section) throw new BadInputError(`"${trimmed}" comes before any [section] header (ansible.cfg options go under [defaults])`, { file, line });
    const option = OPTION.exec(content.trim());
    if (!option) throw new BadInputError(`"${trimmed}" is not "key = value", a [section] header or a comment`, { file, line });
    const key = option[1]!.trim().toLowerCase();
    if (section.has(key)) throw new BadInputError(`option "${key}" in section [${sectionName}] already set at line ${section.get(key)!.line}`, { file, line });
    const entry = { value: option[2]!.trim(), line };
    section.set(key, entry);
    open = { entry, indent };
  });
  if (open) open.entry.value = open.entry.value.replace(/\n+$/, '');
  return sections;
}
