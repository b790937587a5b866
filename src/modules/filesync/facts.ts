/** Read-only probes of a host's file sync: tools, keys, its conf, its last run. */
import { fact } from '../../engine/define.js';
import type { Fact } from '../../engine/types.js';
import { raw, sh } from '../../shell/index.js';
import { parseKeyValues } from '../../core/key-values.js';
import { ETC_DIR, type PeerEntry, type SyncConf, type SyncStatus, keyFile, parseConf, parseStatus, pathId, syncFiles } from './spec.js';

export interface SyncTools {
  rsync: boolean;
  rrsync: boolean;
  flock: boolean;
  sshKeygen: boolean;
  systemd: boolean;
  /** cron's binary (cron on Debian, crond on RHEL), if installed. */
  cron?: string;
  cronRunning: boolean;
}

export const syncToolsFact: Fact<SyncTools> = fact({
  name: 'filesync.tools',
  command: sh`${raw(
    'PATH="$PATH:/usr/sbin:/sbin"; for t in rsync rrsync flock ssh-keygen; do command -v "$t" >/dev/null && echo "$t=yes"; done; ' +
      'c=$(command -v cron || command -v crond); echo "cron=$c"; ' +
      '[ -n "$c" ] && pgrep -x "$(basename "$c")" >/dev/null && echo cron_running=yes; ' +
      '[ -d /run/systemd/system ] && echo systemd=yes; true',
  )}`,
  parse: (r) => {
    const kv = parseKeyValues(r.stdout);
    return {
      rsync: kv.get('rsync') === 'yes',
      rrsync: kv.get('rrsync') === 'yes',
      flock: kv.get('flock') === 'yes',
      sshKeygen: kv.get('ssh-keygen') === 'yes',
      systemd: kv.get('systemd') === 'yes',
      ...(kv.get('cron') ? { cron: kv.get('cron')! } : {}),
      cronRunning: kv.get('cron_running') === 'yes',
    };
  },
});

/** The host's ed25519 host key ("ssh-ed25519 AAAA…"), what the pulls check the source against. */
export const hostKeyFact: Fact<string | null> = fact({
  name: 'ssh.host_key',
  command: sh`cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null || true`,
  parse: (r) => r.stdout.trim().split(/\s+/).slice(0, 2).join(' ') || null,
});

/** This node's public keys of a sync, by path id; a missing key is absent from the map. */
export function pubkeysFact(name: string, paths: string[]): Fact<Record<string, string>> {
  const files = paths.map((p) => `${keyFile(name, p)}.pub`);
  return fact({
    name: `filesync.pubkeys ${name}`,
    command: sh`for f in ${files}; do if [ -f "$f" ]; then printf '%s ' "$f"; head -n 1 "$f"; fi; done; true`,
    parse: (r) => {
      const out: Record<string, string> = {};
      for (const line of r.stdout.split('\n')) {
        const m = /^(\S+)\.pub (.+)$/.exec(line);
        if (!m) continue;
        const path = paths.find((p) => keyFile(name, p) === m[1]);
        if (path) out[pathId(path)] = m[2]!.trim();
      }
      return out;
    },
  });
}

/** The syncs defined on this host (their conf files), with the peers they know. */
export interface HostSync {
  conf: SyncConf;
  peers: PeerEntry[];
}

const SEP = '\x1e';

/** Every sync conf under /etc/runbook/filesync (or only `names`). */
export function hostSyncsFact(names?: string[]): Fact<HostSync[]> {
  const list = names ? sh`${names.map((n) => `${ETC_DIR}/${n}.conf`)}` : raw(`${ETC_DIR}/*.conf`);
  return fact({
    name: 'filesync.syncs',
    become: true,
    command: sh`for c in ${list}; do [ -f "$c" ] || continue; b=\${c%.conf}; printf '%s\\n' "\${b##*/}"; for x in conf paths exclude peers; do printf '${raw(SEP)}'; cat "$b.$x" 2>/dev/null; done; printf '${raw(SEP)}${raw(SEP)}\\n'; done; true`,
    parse: (r) => {
      const out: HostSync[] = [];
      for (const chunk of r.stdout.split(`${SEP}${SEP}\n`)) {
        const [name, conf, paths, exclude, peers] = chunk.split(SEP);
        if (!name?.trim() || conf === undefined) continue;
        let parsedPeers: PeerEntry[] = [];
        try {
          parsedPeers = peers ? (JSON.parse(peers) as PeerEntry[]) : [];
        } catch {
          parsedPeers = [];
        }
        out.push({ conf: { name: name.trim(), ...parseConf(conf, paths ?? '', exclude ?? '') }, peers: parsedPeers });
      }
      return out;
    },
  });
}

export interface SyncRunState {
  status: SyncStatus | null;
  /** Epoch seconds of the last successful pull (mtime of state/last-success). */
  lastSuccess: number | null;
  /** The source address this host's state was reset for (a new direction resets it). */
  epoch: string | null;
  /** Files kept because they were written here (path: files). */
  kept: string[];
  /** Whether a schedule is installed here (cron file or timer unit). */
  scheduled: boolean;
  now: number;
}

export function syncRunFact(name: string): Fact<SyncRunState> {
  const f = syncFiles(name);
  return fact({
    name: `filesync.run ${name}`,
    become: true,
    cache: false,
    command: sh`cd ${f.state} 2>/dev/null && { printf 'status='; head -n 1 status 2>/dev/null; echo; printf 'last_success=%s\\n' "$(stat -c %Y last-success 2>/dev/null)"; printf 'epoch=%s\\n' "$(cat epoch 2>/dev/null)"; for k in kept.*; do [ -s "$k" ] && sed 's/^/kept=/' "$k"; done; }; [ -f ${f.cron} ] || [ -f ${`${'/etc/systemd/system'}/${f.unit}.timer`} ] && echo scheduled=yes; echo now=$(date +%s); true`,
    parse: (r) => {
      const kept: string[] = [];
      const kv = new Map<string, string>();
      for (const line of r.stdout.split('\n')) {
        const i = line.indexOf('=');
        if (i < 0) continue;
        const k = line.slice(0, i);
        const v = line.slice(i + 1);
        if (k === 'kept') kept.push(v);
        else if (!kv.has(k)) kv.set(k, v);
      }
      const ls = kv.get('last_success');
      return {
        status: parseStatus(kv.get('status') ?? null),
        lastSuccess: ls && /^\d+$/.test(ls) ? Number(ls) : null,
        epoch: kv.get('epoch') || null,
        kept,
        scheduled: kv.get('scheduled') === 'yes',
        now: Number(kv.get('now') ?? Math.floor(Date.now() / 1000)),
      };
    },
  });
}
