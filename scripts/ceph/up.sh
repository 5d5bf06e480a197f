#!/usr/bin/env bash
# Brings up a single-node Ceph (one monitor, one memstore OSD, no mgr) on
# 127.0.0.1 for the connector-openstack-ceph tests, with cephx on, a pool and a
# `client.cinder` user that may use only that pool.
#
#   scripts/ceph/up.sh [STATE_DIR]     (default: $SYNCPROXY_CEPH_DIR or <repo>/.tmp/ceph)
#
# Everything (config, keyrings, mon/osd data, logs, sockets, pid files) lives
# under STATE_DIR; scripts/ceph/down.sh STATE_DIR stops the daemons by PID and
# removes it. On success STATE_DIR/cluster.json describes the cluster:
#   {"fsid","monHost" (v1:127.0.0.1:PORT),"port","pool","conf","adminKeyring","user","key","dir"}
# Environment: SYNCPROXY_CEPH_POOL (default volumes), SYNCPROXY_CEPH_PORT (default:
# a free port), SYNCPROXY_CEPH_MEMSTORE_BYTES (OSD RAM cap, default 1 GiB).
# Facts used here: /work/shared/platforms/ceph.md ("A real single-node Ceph").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${1:-${SYNCPROXY_CEPH_DIR:-$root/.tmp/ceph}}"
pool="${SYNCPROXY_CEPH_POOL:-volumes}"
memstore_bytes="${SYNCPROXY_CEPH_MEMSTORE_BYTES:-1073741824}"

for tool in ceph-mon ceph-osd ceph monmaptool ceph-authtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ceph up: $tool not found (run scripts/setup-system.sh as root)" >&2
    exit 2
  fi
done

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# A cluster left in this directory by an earlier run is stopped first.
if [ -d "$dir" ]; then
  "$here/down.sh" "$dir"
fi

attempt() {
  local port="${SYNCPROXY_CEPH_PORT:-$(free_port)}"
  local fsid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  rm -rf "$dir"
  mkdir -p "$dir"/{run,log,mon,osd/ceph-0}
  chmod 700 "$dir"
  local conf="$dir/ceph.conf"
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$port
mon initial members = a
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
paxos propose interval = 0.05
run dir = $dir/run
pid file = $dir/run/\$name.pid
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $memstore_bytes
keyring = $dir/admin.keyring
[mon]
keyring = $dir/mon.keyring
[osd]
keyring = $dir/osd.\$id.keyring
CONF

  # Every key is made up front and imported into the monitor's keyring, so
  # `ceph-mon --mkfs` seeds the auth database with all of them.
  ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/osd.0.keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool --create-keyring "$dir/cinder.keyring" --gen-key -n client.cinder \
    --cap mon 'profile rbd' --cap osd "profile rbd pool=$pool" >/dev/null
  for k in admin osd.0 cinder; do
    ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/$k.keyring" >/dev/null
  done
  chmod 600 "$dir"/*.keyring

  monmaptool --create --fsid "$fsid" --addv a "[v1:127.0.0.1:$port]" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring"
  ceph-mon -c "$conf" -i a

  local ceph=(ceph -c "$conf" --connect-timeout 15)
  local osd_uuid
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  "${ceph[@]}" osd create "$osd_uuid" >/dev/null
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" 2>>"$dir/log/osd-mkfs.log"
  "${ceph[@]}" osd crush add osd.0 1 host=localhost root=default >/dev/null 2>&1
  ceph-osd -c "$conf" -i 0

  local deadline=$((SECONDS + 30))
  until "${ceph[@]}" osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1'; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "ceph up: osd.0 not up after 30 s (see $dir/log)" >&2
      return 1
    fi
    sleep 0.2
  done
  "${ceph[@]}" osd pool create "$pool" 8 8 >/dev/null 2>&1
  "${ceph[@]}" osd pool application enable "$pool" rbd >/dev/null 2>&1

  local key
  key="$(ceph-authtool -p -n client.cinder "$dir/cinder.keyring")"
  cat >"$dir/cluster.json" <<JSON
{"fsid":"$fsid","monHost":"v1:127.0.0.1:$port","port":$port,"pool":"$pool","conf":"$conf","adminKeyring":"$dir/admin.keyring","user":"cinder","key":"$key","dir":"$dir"}
JSON
  chmod 600 "$dir/cluster.json"
}

started=$SECONDS
if ! attempt; then
  echo "ceph up: retrying once" >&2
  "$here/down.sh" "$dir" --keep
  attempt
fi
echo "ceph up: $dir ($((SECONDS - started)) s)"
