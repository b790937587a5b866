/**
 * `runbook lab fence --name LAB HOST`: what an IPMI power-off or a hypervisor kill is for a real
 * node, done from the root namespace (nsenter), so it works while the host is cut from the network:
 * SIGKILL of every postmaster (and its children) and a standby.signal (+ Debian start.conf manual),
 * so a later start comes up read-only. Idempotent and fast; exit 0 only once no postgres process
 * remains. The lab inventory's fence_command calls it (fence_command contract, ../modules/postgres/fence.ts).
 */
import { BadInputError } from '../errors.js';
import { inHost } from './local.js';
import { readState } from './state.js';

const FENCE_SCRIPT = `
out=""
for d in /var/lib/postgresql/*/main /var/lib/pgsql/*/data; do
  [ -f "$d/PG_VERSION" ] || continue
  pm=""
  [ -f "$d/postmaster.pid" ] && pm=$(head -n 1 "$d/postmaster.pid")
  if [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; then
    kids=$(pgrep -P "$pm" | tr '\\n' ' ')
    kill -KILL "$pm" $kids 2>/dev/null
    out="$out postmaster $pm of $d killed (SIGKILL);"
  fi
  touch "$d/standby.signal" && chown postgres:postgres "$d/standby.signal" || exit 1
  out="$out standby.signal in $d;"
done
for c in /etc/postgresql/*/main; do [ -d "$c" ] && echo manual > "$c/start.conf" && out="$out $c/start.conf manual;"; done
i=0
while pgrep -x postgres >/dev/null; do
  i=$((i + 1))
  [ $i -gt 100 ] && { echo "postgres processes still running after 10 s:$out" >&2; exit 1; }
  pgrep -x postgres | xargs -r kill -KILL 2>/dev/null
  sleep 0.1
done
echo "fenced:\${out:- no cluster found;} no postgres process runs"
`;

export async function labFence(opts: { name: string; host: string }): Promise<string> {
  const state = readState(opts.name);
  if (!state) throw new BadInputError(`lab ${opts.name} is not up`);
  const h = state.hosts[opts.host];
  if (!h || !state.spec.hosts.some((x) => x.name === opts.host))
    throw new BadInputError(`lab ${opts.name} has no host ${opts.host} (hosts: ${state.spec.hosts.map((x) => x.name).join(', ')})`);
  const r = await inHost(h.init.pid, FENCE_SCRIPT, { timeoutMs: 30_000 });
  return `${opts.host}: ${r.stdout.trim()}`;
}
