#!/usr/bin/env bash
# Makes sure a local six-node Redis Cluster (three primaries, three replicas)
# answers on 127.0.0.1 ports CLUSTER_PORT..CLUSTER_PORT+5 (default 7000),
# without Docker: starts the missing redis-server processes in cluster mode,
# non-persistent, data under $TMPDIR/ngx-cluster-<port>, and creates the
# cluster once. Prints the REDIS_URL seed list on stdout. Never touches a
# server it did not start.
set -euo pipefail

base="${CLUSTER_PORT:-7000}"
here="$(cd "$(dirname "$0")" && pwd)"
# Installs redis-server when missing; a URL list makes it start nothing.
REDIS_URL="redis://127.0.0.1:$base,redis://127.0.0.1:$((base + 1))" "$here/ensure-redis.sh"

ports=()
for i in 0 1 2 3 4 5; do ports+=("$((base + i))"); done

for port in "${ports[@]}"; do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then continue; fi
  dir="${TMPDIR:-/tmp}/ngx-cluster-$port"
  rm -rf "$dir" && mkdir -p "$dir"
  echo "ensure-cluster: starting redis-server on 127.0.0.1:$port (data in $dir)" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
    --cluster-require-full-coverage no \
    --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
done

if ! redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok'; then
  if [ "$(redis-cli -p "$base" cluster info | awk -F: '/cluster_slots_assigned/ {print $2}' | tr -d '\r')" = "0" ]; then
    echo "ensure-cluster: creating the cluster" >&2
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") \
      --cluster-replicas 1 --cluster-yes >/dev/null
  fi
  for _ in $(seq 1 100); do
    redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' && break
    sleep 0.1
  done
fi
redis-cli -p "$base" cluster info | grep -q 'cluster_state:ok' ||
  { echo "ensure-cluster: the cluster on port $base is not ok" >&2; exit 1; }
printf 'redis://127.0.0.1:%s,' "${ports[@]}" | sed 's/,$/\n/'
