/**
 * What a file sync writes on a host, rendered from validated values: the conf files the script
 * reads as data, the pull script, the schedule (cron file or systemd timer) and the source's
 * authorized_keys block. Pure, unit-tested.
 */
import { quoteWord } from '../../shell/quote.js';
import { type PeerEntry, type SyncConf, UNIT_DIR, keyFile, pathId, syncFiles } from './spec.js';

const HEADER = (name: string) => `# runbook file sync "${name}": managed by runbook (setup-file-sync); do not edit\n`;

export function renderConf(c: SyncConf): string {
  return `${HEADER(c.name)}source=${c.source}\nsource_address=${c.sourceAddress}\ndelete=${c.delete ? 1 : 0}\ninterval=${c.interval}\n`;
}
export const renderPaths = (paths: string[]) => paths.map((p) => `${p.replace(/\/+$/, '')}\n`).join('');
/** rsync --exclude-from: one pattern a line (validated: none starts with # or ;). */
export const renderExclude = (patterns: string[]) => patterns.map((p) => `${p}\n`).join('');
export const renderPeers = (peers: PeerEntry[]) => `${JSON.stringify(peers, null, 1)}\n`;

/** known_hosts for the pulls: every node's host key under its address (strict checking in the script). */
export function renderKnownHosts(peers: PeerEntry[]): string {
  return peers.map((p) => `${p.address} ${p.hostKey}\n`).join('');
}

/** One authorized_keys option value: inside double quotes, where `"` and `\` need a backslash. */
export function authorizedKeysOption(name: string, value: string): string {
  return `${name}="${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The forced command: rrsync read-only below `path`, and nothing else. rrsync itself lets
 * `ssh HOST true` pass (a connectivity check); this key may not even do that.
 */
export function forcedCommand(path: string): string {
  return `case "$SSH_ORIGINAL_COMMAND" in 'rsync --server '*) exec /usr/bin/rrsync -ro ${quoteWord(path)} ;; *) echo 'runbook filesync: this key only runs rsync' >&2; exit 1 ;; esac`;
}

/**
 * The source's entry for one target's key of one path: rrsync read-only below the path, from the
 * target's address only, no pty, no forwarding of any kind (`restrict` plus the explicit names for
 * readers and older sshd).
 */
export function authorizedKeyLine(path: string, target: PeerEntry, syncName: string): string | null {
  const key = target.keys[pathId(path)];
  if (!key) return null;
  const blob = key.trim().split(/\s+/).slice(0, 2).join(' ');
  const opts = [
    'restrict',
    'no-pty',
    'no-port-forwarding',
    'no-agent-forwarding',
    'no-X11-forwarding',
    'no-user-rc',
    authorizedKeysOption('command', forcedCommand(path)),
    authorizedKeysOption('from', target.address),
  ];
  return `${opts.join(',')} ${blob} runbook-filesync-${syncName}@${target.host}`;
}

export function renderAuthorizedBlock(c: Pick<SyncConf, 'name' | 'paths'>, targets: PeerEntry[]): string {
  const lines: string[] = [];
  for (const t of targets) for (const p of c.paths) {
    const l = authorizedKeyLine(p, t, c.name);
    if (l) lines.push(l);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** cron: one line per offset under a minute (`sleep N;` first), else a minute or hour step. */
export function renderCron(name: string, interval: number): string {
  const cmd = `${syncFiles(name).script} --scheduled`;
  const lines: string[] = [];
  if (interval < 60) for (let off = 0; off < 60; off += interval) lines.push(`* * * * * root ${off ? `sleep ${off}; ` : ''}${cmd}`);
  else if (interval < 3600) lines.push(`${interval === 60 ? '*' : `*/${interval / 60}`} * * * * root ${cmd}`);
  else lines.push(`0 ${interval === 3600 ? '*' : `*/${interval / 3600}`} * * * root ${cmd}`);
  return `${HEADER(name)}SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n${lines.join('\n')}\n`;
}

export function renderService(name: string): string {
  return `${HEADER(name)}[Unit]\nDescription=runbook file sync ${name} (pull from the current source)\nAfter=network-online.target\n\n[Service]\nType=oneshot\nExecStart=${syncFiles(name).script} --scheduled\n`;
}

export function renderTimer(name: string, interval: number): string {
  return `${HEADER(name)}[Unit]\nDescription=runbook file sync ${name} every ${interval} s\n\n[Timer]\nOnBootSec=${interval}s\nOnUnitActiveSec=${interval}s\nAccuracySec=1s\n\n[Install]\nWantedBy=timers.target\n`;
}

/**
 * The pull script, run on each target by the schedule (and by the runbooks: `--dry-run` lists what
 * a pull would change, `--reset` starts a new direction). Its only embedded value is the sync name
 * (validated); the source, the paths and the excludes are read as data from the conf files.
 *
 * A file written on this host since the last successful pull (its size or mtime differ from the
 * manifest recorded then, or it is new) that the pull would overwrite or delete is *kept*: listed
 * in state/kept.ID, excluded from every later pull until someone removes it from that list, and
 * counted in the status line that `runbook check` reads — unless the sync mirrors (delete=1).
 */
export function renderScript(name: string): string {
  const f = syncFiles(name);
  const q = quoteWord;
  return `#!/bin/sh
${HEADER(name)}# Usage: ${f.script} [--scheduled|--dry-run|--reset]
set -u
name=${q(name)}
etc=${q(f.conf.replace(/\/[^/]*$/, ''))}
state=${q(f.state)}
lock=${q(f.lock)}
mode=\${1:-sync}
conf="$etc/$name.conf"
log() { printf '%s %s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$state/log"; }
exec 9>>"$lock"
if [ "$mode" = --reset ] || [ "$mode" = --dry-run ]; then flock -w 120 9 || exit 75; else flock -n 9 || { [ -d "$state" ] && log "skipped: the previous sync still runs"; exit 0; }; fi
# Run by cron or the timer: a job already sleeping (cron's "sleep N;") or due when the schedule
# was removed (failback's stop, disable-file-sync, this node became the source) pulls nothing.
# Checked under the lock: whoever removes the schedule then waits for the lock.
if [ "$mode" = --scheduled ]; then
  [ -f ${q(f.cron)} ] || [ -f ${q(`${UNIT_DIR}/${f.unit}.timer`)} ] || exit 0
  mode=sync
fi
mkdir -p "$state" || exit 1
val() { sed -n "s/^$1=//p" "$conf" | head -n 1; }
src=$(val source_address); delete=$(val delete)
[ -n "$src" ] || { echo "no source_address in $conf" >&2; exit 1; }
manifest() { find "$1" -mindepth 1 \\( -type f -o -type l \\) -printf '%P\\t%T@\\t%s\\n' 2>/dev/null | sort; }
if [ "$mode" = --reset ]; then
  while IFS= read -r path; do
    [ -n "$path" ] || continue
    id=$(printf '%s' "$path" | sha256sum | cut -c1-12)
    mkdir -p "$path" && manifest "$path" >"$state/manifest.$id" && : >"$state/kept.$id"
  done <"$etc/$name.paths"
  rm -f "$state/status" "$state/last-success"
  printf '%s\\n' "$src" >"$state/epoch"
  log "reset: source now $src"
  exit 0
fi
: >"$state/started.new"
failed=; kept=0
while IFS= read -r path; do
  [ -n "$path" ] || continue
  id=$(printf '%s' "$path" | sha256sum | cut -c1-12)
  rsh="ssh -i $etc/$name.key.$id -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$etc/$name.known_hosts -o ConnectTimeout=10 -l root"
  mkdir -p "$path"
  if [ "$mode" = --dry-run ]; then
    touch "$state/protect.$id"
    # rsync's status counts: a listing of nothing because it could not connect is no "up to date".
    rsync -a -n --out-format='%i %n' --exclude-from="$etc/$name.exclude" --exclude-from="$state/protect.$id" -e "$rsh" "$src:" "$path/" >"$state/dry.$id" 2>&1
    rc=$?
    sed "s|^|$path: |" "$state/dry.$id"
    [ "$rc" = 0 ] || { echo "$path: rsync --dry-run from $src: exit $rc: $(tail -n 3 "$state/dry.$id" | tr '\\n' ' ')" >&2; exit 1; }
    continue
  fi
  kept_file="$state/kept.$id"; touch "$kept_file"
  if [ "$delete" != 1 ] && [ -f "$state/manifest.$id" ]; then
    # What a pull would change here, then those of them written here since the last pull.
    rsync -a -n --delete --out-format='%i %n' --exclude-from="$etc/$name.exclude" -e "$rsh" "$src:" "$path/" 2>>"$state/log" |
      sed -n 's/^\\(\\*deleting\\|[>c][fL][^ ]*\\) *//p' | grep -v '/$' >"$state/would.$id"
    manifest "$path" >"$state/now.$id"
    awk -F '\\t' 'FILENAME == ARGV[1] { old[$1] = $2 FS $3; next } FILENAME == ARGV[2] { now[$1] = $2 FS $3; next } ($0 in now) && now[$0] != old[$0] { print }' \\
      "$state/manifest.$id" "$state/now.$id" "$state/would.$id" >>"$kept_file"
    sort -u -o "$kept_file" "$kept_file"
  fi
  [ "$delete" = 1 ] && : >"$kept_file"
  # kept paths as anchored rsync patterns, wildcards escaped
  sed 's/[[*?\\\\]/\\\\&/g; s|^|/|' "$kept_file" >"$state/protect.$id"
  if [ "$delete" = 1 ]; then del=--delete; else del=; fi
  if rsync -a $del --exclude-from="$etc/$name.exclude" --exclude-from="$state/protect.$id" -e "$rsh" "$src:" "$path/" 2>>"$state/log"; then
    manifest "$path" >"$state/manifest.$id"
  else
    failed="rsync exit $? for $path"
  fi
  n=$(wc -l <"$kept_file"); kept=$((kept + n))
  [ "$n" -gt 0 ] && log "kept in $path (written here, not overwritten): $(tr '\\n' ' ' <"$kept_file")"
done <"$etc/$name.paths"
[ "$mode" = --dry-run ] && exit 0
if [ -z "$failed" ]; then
  mv -f "$state/started.new" "$state/last-success"
  printf 'ok %s %s kept=%s\\n' "$(date +%s)" "$src" "$kept" >"$state/status.new" && mv -f "$state/status.new" "$state/status"
  log "ok from $src, kept $kept"
else
  printf 'failed %s %s kept=%s %s\\n' "$(date +%s)" "$src" "$kept" "$failed" >"$state/status.new" && mv -f "$state/status.new" "$state/status"
  log "failed from $src: $failed"
  exit 1
fi
`;
}

export { keyFile };
