/**
 * ssh_config evaluated the way `ssh -G HOST` evaluates it: Host and Match blocks (all, host,
 * originalhost, user, localuser, negation), Include with globs (relative to ~/.ssh) at its place
 * and only inside a matching block, first value wins (IdentityFile and CertificateFile add up),
 * HostName's %h. Options are named in lower case, as `ssh -G` prints them. Anything runbook cannot
 * honour is refused naming the option and file:line (never dropped silently); `Match exec` is
 * refused rather than run.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import picomatch from 'picomatch';
import { BadInputError } from '../errors.js';

/** What runbook does with each option that can reach it. */
export const HONOURED = new Set([
  'hostname', 'port', 'user', 'identityfile', 'identitiesonly', 'identityagent', 'proxyjump', 'proxycommand',
  'stricthostkeychecking', 'userknownhostsfile', 'globalknownhostsfile', 'hostkeyalias', 'serveraliveinterval',
  'serveralivecountmax', 'connecttimeout', 'include', 'host', 'match',
]);

/** Options with no bearing on runbook's one exec channel per command (said in the docs, not an error). */
export const IRRELEVANT = new Set([
  'addkeystoagent', 'batchmode', 'checkhostip', 'ciphers', 'compression', 'controlmaster', 'controlpath', 'controlpersist',
  'forwardagent', 'forwardx11', 'forwardx11trusted', 'gssapiauthentication', 'gssapidelegatecredentials', 'hashknownhosts',
  'hostkeyalgorithms', 'kexalgorithms', 'loglevel', 'macs', 'passwordauthentication', 'preferredauthentications',
  'pubkeyauthentication', 'pubkeyacceptedalgorithms', 'pubkeyacceptedkeytypes', 'requesttty', 'sendenv', 'setenv',
  'tcpkeepalive', 'updatehostkeys', 'usekeychain', 'visualhostkey', 'ignoreunknown', 'kbdinteractiveauthentication',
  'challengeresponseauthentication', 'numberofpasswordprompts', 'connectionattempts', 'escapechar', 'localforward',
  'remoteforward', 'dynamicforward', 'exitonforwardfailure', 'clearallforwardings', 'canonicalizehostname', 'addressfamily',
]);

const MULTI = new Set(['identityfile', 'certificatefile']);

export interface ConfigQuery {
  /** The destination as given (ansible_host, or a jump host's name). */
  host: string;
  /** -l / inventory user, which Match user tests before the config's User. */
  user?: string;
  env?: NodeJS.ProcessEnv;
}

/** Option name → values, as `ssh -G` prints them (before the tokens ssh expands only when it uses a value). */
export type EvaluatedConfig = Map<string, { values: string[]; where: string }>;

interface Line {
  keyword: string;
  args: string[];
  where: string;
}

function splitArgs(text: string, where: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2]!);
  if ((text.match(/"/g) ?? []).length % 2) throw new BadInputError(`unbalanced quotes in ssh config line`, { file: where });
  return out;
}

function readLines(file: string): Line[] {
  const lines: Line[] = [];
  readFileSync(file, 'utf8').split(/\r?\n/).forEach((raw, i) => {
    const text = raw.trim();
    if (!text || text.startsWith('#')) return;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(text) ?? [text, text, ''];
    const where = `${file}:${i + 1}`;
    lines.push({ keyword: m[1]!.toLowerCase(), args: splitArgs(m[2] ?? '', where), where });
  });
  return lines;
}

/** ssh's match_pattern_list: a comma list of globs, `!` negating; one negative match refuses. */
export function matchPatternList(name: string, patterns: string[]): boolean {
  let matched = false;
  for (const p of patterns.flatMap((x) => x.split(','))) {
    const negated = p.startsWith('!');
    const glob = negated ? p.slice(1) : p;
    if (picomatch.isMatch(name.toLowerCase(), glob.toLowerCase(), { dot: true, nobrace: true, noextglob: true })) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function expandGlob(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) return existsSync(pattern) ? [pattern] : [];
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  const dirs = /[*?[]/.test(dir) ? expandGlob(dir) : [dir];
  return dirs.flatMap((d) => {
    try {
      return readdirSync(d).filter((n) => picomatch.isMatch(n, base, { dot: false })).sort().map((n) => join(d, n));
    } catch {
      return [];
    }
  });
}

export function evaluateSshConfig(file: string, q: ConfigQuery): EvaluatedConfig {
  const out: EvaluatedConfig = new Map();
  const localUser = userInfo().username;
  const set = (keyword: string, values: string[], where: string) => {
    if (MULTI.has(keyword)) {
      const prev = out.get(keyword);
      out.set(keyword, { values: [...(prev?.values ?? []), ...values], where: prev?.where ?? where });
    } else if (!out.has(keyword)) out.set(keyword, { values, where });
  };
  const visit = (path: string, depth: number) => {
    if (depth > 16) throw new BadInputError('ssh config: Include nested too deep (16 levels)', { file: path });
    let active = true;
    for (const line of readLines(path)) {
      if (line.keyword === 'host') {
        active = matchPatternList(q.host, line.args);
        continue;
      }
      if (line.keyword === 'match') {
        active = matchBlock(line, q, out.get('user')?.values[0] ?? q.user ?? localUser, localUser);
        continue;
      }
      if (!active) continue;
      if (line.keyword === 'include') {
        for (const arg of line.args) {
          const pattern = expandTilde(arg);
          const abs = isAbsolute(pattern) ? pattern : join(homedir(), '.ssh', pattern);
          for (const f of expandGlob(abs)) visit(f, depth + 1);
        }
        continue;
      }
      set(line.keyword, line.args, line.where);
    }
  };
  if (existsSync(file)) visit(file, 0);
  return out;
}

function matchBlock(line: Line, q: ConfigQuery, remoteUser: string, localUser: string): boolean {
  const args = [...line.args];
  let result = true;
  while (args.length) {
    let criterion = args.shift()!.toLowerCase();
    const negate = criterion.startsWith('!');
    if (negate) criterion = criterion.slice(1);
    if (criterion === 'all') continue;
    const arg = args.shift();
    if (arg === undefined) throw new BadInputError(`ssh config: Match ${criterion} needs an argument`, { file: line.where });
    let ok: boolean;
    switch (criterion) {
      case 'host':
      case 'originalhost':
        ok = matchPatternList(q.host, [arg]);
        break;
      case 'user':
        ok = matchPatternList(remoteUser, [arg]);
        break;
      case 'localuser':
        ok = matchPatternList(localUser, [arg]);
        break;
      default:
        // exec runs a command for every connection; canonical/final/localnetwork/tagged need ssh's own state.
        throw new BadInputError(
          `ssh config: "Match ${criterion}" is not supported by runbook${criterion === 'exec' ? ' (it would run a command on every connection)' : ''}: use Host blocks, or give the option in the inventory (ansible_ssh_common_args)`,
          { file: line.where },
        );
    }
    if (ok === negate) result = false;
  }
  return result;
}

export function expandTilde(path: string): string {
  return path.replace(/^~(?=\/|$)/, homedir());
}

export interface TokenValues {
  /** %h: the host name after HostName. */
  host: string;
  /** %n: the name as given. */
  original: string;
  port: number;
  /** %r */
  remoteUser: string;
}

/** ssh's percent_expand for file-ish options, plus `~` and `${VAR}` (IdentityFile, CertificateFile, UserKnownHostsFile, IdentityAgent). */
export function expandTokens(value: string, t: TokenValues, env: NodeJS.ProcessEnv = process.env, where?: string): string {
  const tokens: Record<string, string> = {
    '%': '%',
    h: t.host,
    n: t.original,
    p: String(t.port),
    r: t.remoteUser,
    u: userInfo().username,
    d: homedir(),
    i: String(userInfo().uid),
    l: hostnameLong(),
    L: hostnameLong().split('.')[0]!,
  };
  const expanded = expandTilde(value).replace(/%(.)/g, (m, c: string) => {
    const v = tokens[c];
    if (v === undefined) throw new BadInputError(`ssh config: token %${c} in "${value}" is not supported by runbook`, where ? { file: where } : undefined);
    return v;
  });
  return expanded.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new BadInputError(`ssh config: environment variable \${${name}} in "${value}" is not set`, where ? { file: where } : undefined);
    return v;
  });
}

/** gethostname(), what OpenSSH's %l uses. */
function hostnameLong(): string {
  return hostname();
}

/** Options that reach a host and that runbook neither honours nor may ignore: refused by name and place. */
export function refuseUnsupported(config: EvaluatedConfig): void {
  for (const [keyword, { where }] of config) {
    if (HONOURED.has(keyword) || IRRELEVANT.has(keyword)) continue;
    throw new BadInputError(
      `ssh config: option ${keyword} is not supported by runbook (it would change how the connection is made); remove it for this host or ask for it`,
      { file: where },
    );
  }
}

export type HostKeyChecking = 'yes' | 'accept-new' | 'no' | 'ask';

/** The options runbook honours, typed and with their tokens expanded, for one destination. */
export interface SshOptions {
  hostname: string;
  port: number;
  user: string;
  /** Configured key files, expanded; empty means ssh's defaults. */
  identityFiles: string[];
  identitiesOnly: boolean;
  /** `none`, or an agent socket path. */
  identityAgent?: string;
  proxyJump?: string;
  /** Tokens expanded: a shell line run with /bin/sh -c. */
  proxyCommand?: string;
  strictHostKeyChecking: HostKeyChecking;
  userKnownHostsFiles: string[];
  globalKnownHostsFiles: string[];
  hostKeyAlias?: string;
  serverAliveInterval: number;
  serverAliveCountMax: number;
  connectTimeout?: number;
  /** Where each option came from (file:line), for messages. */
  origin: Map<string, string>;
}

function yesNo(v: string | undefined, where: string | undefined, name: string): boolean | undefined {
  if (v === undefined) return undefined;
  const s = v.toLowerCase();
  if (['yes', 'true'].includes(s)) return true;
  if (['no', 'false'].includes(s)) return false;
  throw new BadInputError(`ssh config: ${name} must be yes or no, got "${v}"`, where ? { file: where } : undefined);
}

function wholeNumber(v: string | undefined, where: string | undefined, name: string): number | undefined {
  if (v === undefined || v.toLowerCase() === 'none') return undefined;
  if (!/^\d+$/.test(v)) throw new BadInputError(`ssh config: ${name} must be a whole number of seconds, got "${v}"`, where ? { file: where } : undefined);
  return Number(v);
}

export function sshOptions(file: string, q: ConfigQuery): SshOptions {
  const cfg = evaluateSshConfig(file, q);
  refuseUnsupported(cfg);
  const one = (k: string) => cfg.get(k)?.values[0];
  const at = (k: string) => cfg.get(k)?.where;
  const env = q.env ?? process.env;
  const hostname = (one('hostname') ?? q.host).replace(/%(.)/g, (_m, c: string) => (c === 'h' ? q.host : c === '%' ? '%' : `%${c}`));
  const portText = one('port');
  const port = portText === undefined ? 22 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BadInputError(`ssh config: Port must be 1-65535, got "${portText}"`, { file: at('port')! });
  const user = q.user ?? one('user') ?? userInfo().username;
  const t: TokenValues = { host: hostname, original: q.host, port, remoteUser: user };
  const files = (k: string) => (cfg.get(k)?.values ?? []).map((v) => expandTokens(v, t, env, at(k)));
  const strict = (one('stricthostkeychecking') ?? 'ask').toLowerCase();
  const strictness: HostKeyChecking =
    strict === 'yes' || strict === 'true' ? 'yes' : strict === 'no' || strict === 'false' || strict === 'off' ? 'no' : strict === 'accept-new' ? 'accept-new' : strict === 'ask' ? 'ask' : (() => {
      throw new BadInputError(`ssh config: StrictHostKeyChecking must be yes, accept-new, no or ask, got "${strict}"`, { file: at('stricthostkeychecking')! });
    })();
  const agent = one('identityagent');
  const proxyCommand = cfg.get('proxycommand')?.values.join(' ');
  const origin = new Map([...cfg].map(([k, v]) => [k, v.where]));
  return {
    hostname,
    port,
    user,
    identityFiles: files('identityfile'),
    identitiesOnly: yesNo(one('identitiesonly'), at('identitiesonly'), 'IdentitiesOnly') ?? false,
    ...(agent === undefined ? {} : { identityAgent: agent.toLowerCase() === 'none' ? 'none' : agent === 'SSH_AUTH_SOCK' ? (env.SSH_AUTH_SOCK ?? 'none') : expandTokens(agent.replace(/^\$SSH_AUTH_SOCK$/, '${SSH_AUTH_SOCK}'), t, env, at('identityagent')) }),
    ...(one('proxyjump') !== undefined && one('proxyjump')!.toLowerCase() !== 'none' ? { proxyJump: one('proxyjump')! } : {}),
    ...(proxyCommand !== undefined && proxyCommand.toLowerCase() !== 'none'
      ? { proxyCommand: proxyCommand.replace(/%([%hnpr])/g, (_m, c: string) => ({ '%': '%', h: hostname, n: q.host, p: String(port), r: user })[c]!) }
      : {}),
    strictHostKeyChecking: strictness,
    userKnownHostsFiles: cfg.has('userknownhostsfile') ? files('userknownhostsfile') : [join(homedir(), '.ssh/known_hosts'), join(homedir(), '.ssh/known_hosts2')],
    globalKnownHostsFiles: cfg.has('globalknownhostsfile') ? files('globalknownhostsfile') : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
    ...(one('hostkeyalias') !== undefined ? { hostKeyAlias: one('hostkeyalias')! } : {}),
    serverAliveInterval: wholeNumber(one('serveraliveinterval'), at('serveraliveinterval'), 'ServerAliveInterval') ?? 0,
    serverAliveCountMax: wholeNumber(one('serveralivecountmax'), at('serveralivecountmax'), 'ServerAliveCountMax') ?? 3,
    ...(wholeNumber(one('connecttimeout'), at('connecttimeout'), 'ConnectTimeout') !== undefined ? { connectTimeout: wholeNumber(one('connecttimeout'), at('connecttimeout'), 'ConnectTimeout')! } : {}),
    origin,
  };
}
