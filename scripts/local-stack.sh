#!/usr/bin/env bash
# The stack without containers: the nginx config of the stack (same template, same auth step) run
# by the system `nginx` binary on loopback, in front of the API started from services/api, against
# OLLAMA_BASE_URL (a native Ollama, an ssh tunnel, or the fake Ollama of the tests).
# Runs in the foreground until Ctrl-C / SIGTERM, then stops both.
#
#   AUTH_USERS=me:secret ADMIN_USERS=me OLLAMA_BASE_URL=http://127.0.0.1:11434 scripts/local-stack.sh
#
# env: HTTP_PORT (8080) nginx port on 127.0.0.1; API_PORT (HTTP_PORT+1); TUNNEL_PORT (HTTP_PORT+2):
#      nginx's tunnel listener (believes CF-Connecting-IP), for a host-run cloudflared; AUTH_USERS (required);
#      ADMIN_USERS; OLLAMA_BASE_URL (http://127.0.0.1:11434); LOG_LEVEL (warn); NGINX_* overrides
#      (see scripts/render-nginx.sh); any other API variable is passed through to the API.
# Prints, once both answer:  LOCAL_STACK_URL=http://127.0.0.1:<port>  LOCAL_STACK_TUNNEL_URL=...
#                            LOCAL_STACK_API_PID=<pid>  LOCAL_STACK_NGINX_PID=<pid>
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
api_dir=$root/services/api
: "${AUTH_USERS:?AUTH_USERS is required (user:password,...)}"
export HTTP_PORT=${HTTP_PORT:-8080}
export API_PORT=${API_PORT:-$((HTTP_PORT + 1))}
export TUNNEL_PORT=${TUNNEL_PORT:-$((HTTP_PORT + 2))}
export OLLAMA_BASE_URL=${OLLAMA_BASE_URL:-http://127.0.0.1:11434}
export LOG_LEVEL=${LOG_LEVEL:-warn}

command -v nginx >/dev/null || { echo "local-stack: nginx not found (apt-get install nginx-light / brew install nginx)" >&2; exit 1; }
command -v curl >/dev/null || { echo "local-stack: curl not found" >&2; exit 1; }

if [ ! -f "$api_dir/dist/main.js" ]; then
  echo "local-stack: building the API (services/api)" >&2
  [ -d "$api_dir/node_modules" ] || (cd "$api_dir" && npm ci --no-audit --no-fund >&2)
  (cd "$api_dir" && npm run build >&2)
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/local-stack.XXXXXX")
api_pid="" nginx_pid="" watch_pid=""
cleanup() {
  trap - EXIT INT TERM
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  [ -n "$api_pid" ] && kill -TERM "$api_pid" 2>/dev/null || true
  for pid in $nginx_pid $api_pid; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

wait_http() { # URL SECONDS PID: until URL answers 200, the process died, or time is up
  local url=$1 tries=$(( $2 * 10 )) pid=$3
  for _ in $(seq "$tries"); do
    curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "local-stack: process $pid exited while waiting for $url" >&2; return 1; }
    sleep 0.1
  done
  echo "local-stack: $url did not answer 200 within $2 s" >&2; return 1
}

# the API, as in the container (docker/api/Dockerfile: its memory settings too): all of the caller's
# API variables, plus these
MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072 MALLOC_MMAP_THRESHOLD_=131072 \
  PORT=$API_PORT HOST=127.0.0.1 TRUST_PROXY=1 node --max-semi-space-size=4 --heap-growing-percent=20 "$api_dir/dist/main.js" &
api_pid=$!
wait_http "http://127.0.0.1:$API_PORT/health" 30 "$api_pid"

NGINX_PORT=$HTTP_PORT NGINX_TUNNEL_PORT=$TUNNEL_PORT NGINX_API_UPSTREAM=127.0.0.1:$API_PORT "$root/scripts/render-nginx.sh" "$state/nginx"
nginx -e stderr -p "$state/nginx" -c "$state/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
wait_http "http://127.0.0.1:$HTTP_PORT/nginx-health" 10 "$nginx_pid"

( while kill -0 "$api_pid" 2>/dev/null; do sleep 1; done
  echo "local-stack: the API (pid $api_pid) has exited; nginx keeps answering (502) until stopped" >&2 ) &
watch_pid=$!

# one write, so a reader never sees the first line without the others
printf 'LOCAL_STACK_URL=http://127.0.0.1:%s\nLOCAL_STACK_TUNNEL_URL=http://127.0.0.1:%s\nLOCAL_STACK_API_PID=%s\nLOCAL_STACK_NGINX_PID=%s\n' \
  "$HTTP_PORT" "$TUNNEL_PORT" "$api_pid" "$nginx_pid"
wait "$nginx_pid" || true
