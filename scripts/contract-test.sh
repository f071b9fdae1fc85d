#!/usr/bin/env bash
# Contract test: runs schemathesis against the running service's own
# /openapi.json. Every response must match its documented status codes and
# schema (errors included), and every schema-valid request must be accepted.
#
# Starts, on free loopback ports and in a temporary directory:
#   - its own redis-server,
#   - ngx-agent (debug build, or NGX_AGENT_BIN) on a fresh SQLite file with a
#     random admin token,
# runs schemathesis with --checks all, a bounded number of examples per
# operation and the stateful phase (links: create a conversation, then read
# it and append to it), and stops both processes by pid.
#
# Environment:
#   NGX_AGENT_BIN        binary to test (default: cargo build, target/debug)
#   CONTRACT_EXAMPLES    examples per operation (default 30)
#   CONTRACT_MAX_TIME    seconds for the whole schemathesis run (default 150)
#   SCHEMATHESIS         schemathesis command (default: a venv under target/)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="4.32.5"
examples="${CONTRACT_EXAMPLES:-30}"
max_time="${CONTRACT_MAX_TIME:-150}"
work="$(mktemp -d "${TMPDIR:-/tmp}/ngx-contract.XXXXXX")"
redis_pid=""
agent_pid=""

cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# schemathesis from PyPI, pinned, in a venv under target/ (reused).
if [ -z "${SCHEMATHESIS:-}" ]; then
  venv="target/contract-venv"
  if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "contract-test: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  SCHEMATHESIS="$venv/bin/schemathesis"
fi

if [ -z "${NGX_AGENT_BIN:-}" ]; then
  cargo build --quiet -p ngx-agent --bin ngx-agent
  NGX_AGENT_BIN="target/debug/ngx-agent"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  scripts/ensure-redis.sh
fi
redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --logfile "$work/redis.log" >/dev/null 2>&1 &
redis_pid=$!

port="$(free_port)"
token="contract-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
HTTP_ADDR="127.0.0.1:$port" \
DATABASE_URL="sqlite://$work/ngx.db" \
REDIS_URL="redis://127.0.0.1:$redis_port" \
CACHE_NAMESPACE="contract" \
ADMIN_TOKEN="$token" \
RUST_LOG="${RUST_LOG:-warn}" \
  "$NGX_AGENT_BIN" >"$work/agent.log" 2>&1 &
agent_pid=$!

base="http://127.0.0.1:$port"
answers() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
}
for _ in $(seq 1 300); do
  if answers "$base/health"; then break; fi
  if ! kill -0 "$agent_pid" 2>/dev/null; then
    echo "contract-test: ngx-agent exited early:" >&2
    cat "$work/agent.log" >&2
    exit 1
  fi
  sleep 0.2
done
answers "$base/health" || { echo "contract-test: ngx-agent never answered" >&2; exit 1; }

echo "contract-test: schemathesis $("$SCHEMATHESIS" --version | awk '{print $NF}') against $base/openapi.json"
status=0
"$SCHEMATHESIS" run "$base/openapi.json" \
  --checks all \
  --max-examples "$examples" \
  --max-time "$max_time" \
  --phases examples,coverage,fuzzing,stateful \
  --header "Authorization: Bearer $token" \
  --request-timeout 15 \
  --seed "${CONTRACT_SEED:-20261202}" \
  --workers 2 \
  --no-color \
  --report junit --report-dir "target/contract-report" \
  || status=$?

if ! kill -0 "$agent_pid" 2>/dev/null; then
  echo "contract-test: ngx-agent died during the run" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "contract-test: FAILED (service log: last 40 lines)" >&2
  tail -n 40 "$work/agent.log" >&2
fi
exit "$status"
