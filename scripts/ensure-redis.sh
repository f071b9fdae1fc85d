#!/usr/bin/env bash
# Makes sure redis-server is installed and that something answers at REDIS_URL.
# Installs Debian's redis-server when it is missing (as root, or with sudo) and
# starts a local, non-persistent server when the URL points at this machine
# and nothing answers there. Never touches a server it did not start.
set -euo pipefail

url="${REDIS_URL:-redis://localhost:6379}"

cannot_install() {
  cat >&2 <<MSG
ensure-redis: redis-server is not installed and $1.
  Install it yourself (Debian/Ubuntu: sudo apt-get install redis-server;
  macOS: brew install redis), or point REDIS_URL at a running Redis, then
  run this again.
MSG
  exit 1
}

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || cannot_install "this system has no apt-get"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || cannot_install "installing it needs root or sudo"
    sudo -n true 2>/dev/null || echo "ensure-redis: sudo may ask for your password" >&2
    sudo="sudo"
  fi
  echo "ensure-redis: redis-server is missing, installing it with apt-get" >&2
  { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null; } ||
    cannot_install "apt-get install redis-server failed (see above)"
fi

# Cluster URLs and remote hosts are the operator's business.
case "$url" in *,*) exit 0 ;; esac
hostport="${url#*://}"; hostport="${hostport##*@}"; hostport="${hostport%%/*}"
host="${hostport%:*}"; port="${hostport##*:}"
[ "$host" = "$hostport" ] && port=6379
case "$host" in localhost|127.0.0.1|"[::1]"|::1) ;; *) exit 0 ;; esac

if redis-cli -u "$url" ping >/dev/null 2>&1; then
  exit 0
fi
dir="${TMPDIR:-/tmp}/ngx-redis-$port"
mkdir -p "$dir"
echo "ensure-redis: starting redis-server on 127.0.0.1:$port (data in $dir)" >&2
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
for _ in $(seq 1 50); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "ensure-redis: redis-server did not answer on port $port, see $dir/redis.log" >&2
exit 1
