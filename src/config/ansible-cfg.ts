/**
 * What runbook shares with Ansible's configuration: found as Ansible finds ansible.cfg (the first
 * of ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg; ./ansible.cfg is
 * ignored in a world-writable directory), each value overridden by its ANSIBLE_* variable, each
 * one knowing where it came from (`runbook config`). Command-line flags win over both (cli/options.ts).
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BadInputError } from '../errors.js';
import { toBool } from '../inventory/ansible-bool.js';
import { parseIni, type IniFile, type IniValue } from './ini.js';

export type Origin = { kind: 'default' } | { kind: 'env'; name: string } | { kind: 'file'; file: string; line: number };

export interface Setting<T> {
  /** Ansible's name for it (ansible-config dump). */
  name: string;
  value: T;
  origin: Origin;
}

export interface AnsibleConfig {
  /** The ansible.cfg read, if any. */
  file?: string;
  /** Said once to the user (an ignored world-writable ./ansible.cfg). */
  warnings: string[];
  inventory: Setting<string[] | undefined>;
  remoteUser: Setting<string | undefined>;
  privateKeyFile: Setting<string | undefined>;
  hostKeyChecking: Setting<boolean>;
  forks: Setting<number | undefined>;
  vaultPasswordFile: Setting<string | undefined>;
}

type Kind = 'string' | 'path' | 'pathlist' | 'bool' | 'int';

/** [defaults] key, its ANSIBLE_* variable, Ansible's setting name, its type and Ansible's default. */
const SETTINGS = {
  inventory: { key: 'inventory', env: 'ANSIBLE_INVENTORY', name: 'DEFAULT_HOST_LIST', kind: 'pathlist' },
  remoteUser: { key: 'remote_user', env: 'ANSIBLE_REMOTE_USER', name: 'DEFAULT_REMOTE_USER', kind: 'string' },
  privateKeyFile: { key: 'private_key_file', env: 'ANSIBLE_PRIVATE_KEY_FILE', name: 'DEFAULT_PRIVATE_KEY_FILE', kind: 'path' },
  hostKeyChecking: { key: 'host_key_checking', env: 'ANSIBLE_HOST_KEY_CHECKING', name: 'HOST_KEY_CHECKING', kind: 'bool' },
  forks: { key: 'forks', env: 'ANSIBLE_FORKS', name: 'DEFAULT_FORKS', kind: 'int' },
  vaultPasswordFile: { key: 'vault_password_file', env: 'ANSIBLE_VAULT_PASSWORD_FILE', name: 'DEFAULT_VAULT_PASSWORD_FILE', kind: 'path' },
} as const satisfies Record<string, { key: string; env: string; name: string; kind: Kind }>;

export const SETTING_KEYS = Object.keys(SETTINGS) as (keyof typeof SETTINGS)[];

export interface FindOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  home?: string;
  /** /etc/ansible/ansible.cfg; a test points it elsewhere. */
  systemFile?: string;
}

const readable = (file: string): boolean => {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
};

/** The ansible.cfg Ansible would read, and why ./ansible.cfg was passed over. */
export function findAnsibleCfg(o: FindOptions = {}): { file?: string; warnings: string[] } {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const warnings: string[] = [];
  const candidates: string[] = [];
  const fromEnv = env.ANSIBLE_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') {
    const p = resolve(cwd, fromEnv.replace(/^~(?=$|\/)/, o.home ?? homedir()));
    candidates.push(existsSync(p) && statSync(p).isDirectory() ? join(p, 'ansible.cfg') : p);
  }
  // Anyone could have put it there: Ansible skips it, with this warning.
  const worldWritable = (statSync(cwd, { throwIfNoEntry: false })?.mode ?? 0) & 0o002;
  const local = join(cwd, 'ansible.cfg');
  if (!worldWritable) candidates.push(local);
  else if (existsSync(local)) warnings.push(`Ansible is being run in a world writable directory (${cwd}), ignoring it as an ansible.cfg source.`);
  candidates.push(join(o.home ?? homedir(), '.ansible.cfg'), o.systemFile ?? '/etc/ansible/ansible.cfg');
  const file = candidates.find(readable);
  return file === undefined ? { warnings } : { file, warnings };
}

function expandPath(value: string, base: string, home: string): string {
  const p = value.replace(/^~(?=$|\/)/, home);
  return isAbsolute(p) ? p : resolve(base, p);
}

function convert(kind: Kind, text: string, base: string, home: string, where: string): unknown {
  switch (kind) {
    case 'string':
      return text;
    case 'path':
      return expandPath(text, base, home);
    case 'pathlist':
      return text.split(',').map((p) => p.trim()).filter(Boolean).map((p) => expandPath(p, base, home));
    case 'bool': {
      const b = toBool(text);
      if (b === undefined) throw new Error(`${where} must be a boolean (true/false, yes/no), got "${text}"`);
      return b;
    }
    case 'int': {
      if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) throw new Error(`${where} must be a whole number ≥ 1, got "${text}"`);
      return Number(text);
    }
  }
}

/** [defaults] key, or configparser's [DEFAULT] fallback. */
function lookup(ini: IniFile | undefined, key: string): IniValue | undefined {
  return ini?.get('defaults')?.get(key) ?? ini?.get('DEFAULT')?.get(key);
}

const DEFAULT_VALUES = { hostKeyChecking: true } as const;

/** The effective values: ANSIBLE_* over the file over Ansible's defaults. Bad input names file:line or the variable. */
export function loadAnsibleConfig(o: FindOptions = {}): AnsibleConfig {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const home = o.home ?? homedir();
  const { file, warnings } = findAnsibleCfg(o);
  let ini: IniFile | undefined;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new BadInputError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    ini = parseIni(text, file);
  }
  const setting = (id: keyof typeof SETTINGS): Setting<unknown> => {
    const s = SETTINGS[id];
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      try {
        return { name: s.name, value: convert(s.kind, fromEnv, cwd, home, s.env), origin: { kind: 'env', name: s.env } };
      } catch (error) {
        throw new BadInputError((error as Error).message);
      }
    }
    const entry = lookup(ini, s.key);
    if (entry && file) {
      try {
        return { name: s.name, value: convert(s.kind, entry.value, dirname(file), home, s.key), origin: { kind: 'file', file, line: entry.line } };
      } catch (error) {
        throw new BadInputError((error as Error).message, { file, line: entry.line });
      }
    }
    return { name: s.name, value: (DEFAULT_VALUES as Record<string, unknown>)[id], origin: { kind: 'default' } };
  };
  return {
    ...(file ? { file } : {}),
    warnings,
    ...(Object.fromEntries(SETTING_KEYS.map((id) => [id, setting(id)])) as Pick<AnsibleConfig, (typeof SETTING_KEYS)[number]>),
  };
}

const cache = new Map<string, AnsibleConfig>();

/** The configuration for this process's cwd and environment, read once; its warnings printed once, on stderr. */
export function ansibleConfig(): AnsibleConfig {
  const key = JSON.stringify([process.cwd(), process.env.ANSIBLE_CONFIG, ...SETTING_KEYS.map((id) => process.env[SETTINGS[id].env])]);
  let config = cache.get(key);
  if (!config) {
    config = loadAnsibleConfig();
    cache.set(key, config);
    for (const w of config.warnings) process.stderr.write(`[WARNING]: ${w}\n`);
  }
  return config;
}

export function formatOrigin(origin: Origin): string {
  return origin.kind === 'default' ? 'default' : origin.kind === 'env' ? `env: ${origin.name}` : `${origin.file}:${origin.line}`;
}
