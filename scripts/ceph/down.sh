#!/usr/bin/env bash
# Stops the Ceph daemons that scripts/ceph/up.sh started in STATE_DIR, by the
# PIDs in their pid files (never by name: other people's processes may share
# the machine), then removes STATE_DIR.
#
#   scripts/ceph/down.sh [STATE_DIR] [--keep]    (--keep leaves the directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-${SYNCPROXY_CEPH_DIR:-$root/.tmp/ceph}}"
keep="${2:-}"

# Alive means running: a daemon that exited may stay a zombie for a while
# before it is reaped, and that must not count.
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Only a ceph daemon whose command line names this directory's config is ours.
ours() {
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *ceph-* && "$cmd" == *"$dir/ceph.conf"* ]]
}

pids=()
if [ -d "$dir/run" ]; then
  for f in "$dir"/run/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" && ours "$pid"; then
      pids+=("$pid")
    fi
  done
fi

for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
deadline=$((SECONDS + 10))
for pid in "${pids[@]}"; do
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
done

if [ "$keep" != --keep ]; then
  rm -rf "$dir"
fi
