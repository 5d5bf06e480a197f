#!/usr/bin/env bash
# Installs the system software the test suite uses (nbdkit/libnbd for the NBD
# client tests, Ceph for the rbd connector, the PostgreSQL server for
# @syncproxy/state-postgres) when it is missing. Debian packages
# via apt-get; needs root (CI and the dev machines run as root). Idempotent.
set -euo pipefail

need=()
command -v nbdkit >/dev/null 2>&1 || need+=(nbdkit)
command -v nbdcopy >/dev/null 2>&1 || need+=(libnbd-bin)
command -v nbdinfo >/dev/null 2>&1 || need+=(libnbd-bin)
if [ "${SYNCPROXY_SKIP_CEPH:-}" != 1 ]; then
  command -v ceph-mon >/dev/null 2>&1 || need+=(ceph-mon)
  command -v ceph-osd >/dev/null 2>&1 || need+=(ceph-osd)
  command -v rbd >/dev/null 2>&1 || need+=(ceph-common)
fi

# Debian keeps initdb and postgres in /usr/lib/postgresql/<major>/bin, off PATH.
have_initdb() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if [ "${SYNCPROXY_SKIP_POSTGRES:-}" != 1 ]; then
  have_initdb || need+=(postgresql)
fi

# postgres refuses to run as root: the tests run it as the `postgres` user, which
# Debian's package creates. Create it when the server came from elsewhere.
ensure_postgres_user() {
  if [ "${SYNCPROXY_SKIP_POSTGRES:-}" != 1 ] && [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
  fi
}

if [ ${#need[@]} -eq 0 ]; then
  ensure_postgres_user
  exit 0
fi
# De-duplicate.
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" != 0 ]; then
  echo "setup-system: missing ${need[*]} and not root: install them with apt-get, or run as root" >&2
  exit 1
fi
echo "setup-system: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
ensure_postgres_user
