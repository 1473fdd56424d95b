#!/usr/bin/env bash
# One place that knows which compose files make which combination (the Makefile calls this).
#
#   scripts/compose.sh MODE COMPOSE_ARGS...      e.g.  scripts/compose.sh server up -d --build
#   MODE: server   docker-compose.yml [+ docker-compose.gpu.yml unless GPU=0]
#                  [+ compose/monitoring.yml unless MONITORING=0 [+ compose/monitoring-ui.yml if PROMETHEUS_UI_PORT]]
#                  [+ --profile tunnel unless TUNNEL=0 [+ compose/tunnel-named.yml if TUNNEL_TOKEN]]
#                  [TUNNEL=tailscale: + compose/tailscale.yml instead of the tunnel profile]
#                  ENGINE=vllm: compose/vllm.yml instead of docker-compose.gpu.yml (vLLM on the GPU as
#                  an `openai` upstream, docs/scaling.md)
#         dev-cpu  docker-compose.yml + compose/dev-cpu.yml       (ollama container on CPU)
#         dev      compose/dev.yml                                (Mac: native Ollama.app)
#         last     the MODE of the last `up` (file .stack-mode), else server - for down/logs/ps
#   ENGINE (ollama, vllm), GPU, TUNNEL (0, 1, tailscale), TUNNEL_TOKEN, MONITORING, PROMETHEUS_UI_PORT, AUTH_USERS, COMPOSE_PROJECT_NAME: environment first, then .env.
#   STACK_ENV_FILE: read this instead of .env (tests use an empty file, so a local .env cannot leak in).
#   COMPOSE_BIN: the compose command (default: `docker compose` if present, else `docker-compose`).
#   --print  as first COMPOSE_ARG: print the top-level arguments instead of running compose.
# Exit 3: refused to start because AUTH_USERS is empty.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:?usage: compose.sh server|dev|dev-cpu|last COMPOSE_ARGS...}
shift

# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"

if [ "$mode" = last ]; then
  mode=$(cat .stack-mode 2>/dev/null || echo server)
fi

project=$(env_get COMPOSE_PROJECT_NAME)
# the api finds the ollama container by this project label: keep its COMPOSE_PROJECT_NAME == -p
export COMPOSE_PROJECT_NAME=${project:-ai-local-core}
args=(--project-directory "$root" -p "$COMPOSE_PROJECT_NAME")
[ -z "${STACK_ENV_FILE:-}" ] || args+=(--env-file "$STACK_ENV_FILE")
case $mode in
  server)
    args+=(-f docker-compose.yml)
    engine=$(env_get ENGINE)
    case ${engine:-ollama} in
      ollama) [ "$(env_get GPU)" = 0 ] || args+=(-f docker-compose.gpu.yml) ;;
      # vLLM needs the GPU (no CPU build in its image): GPU=0 does not apply
      vllm) args+=(-f compose/vllm.yml) ;;
      *) echo "compose.sh: unknown ENGINE '$engine' (ollama, vllm)" >&2; exit 2 ;;
    esac
    # Prometheus + Alertmanager (issue 13): on by default on the server
    if [ "$(env_get MONITORING)" != 0 ]; then
      args+=(-f compose/monitoring.yml)
      [ -z "$(env_get PROMETHEUS_UI_PORT)" ] || args+=(-f compose/monitoring-ui.yml)
    fi
    # ---- tailscale (issue 14): TUNNEL=tailscale runs compose/tailscale.yml instead of cloudflared
    if [ "$(env_get TUNNEL)" = tailscale ]; then
      args+=(-f compose/tailscale.yml)
    # ---- end tailscale
    elif [ "$(env_get TUNNEL)" != 0 ]; then
      [ -z "$(env_get TUNNEL_TOKEN)" ] || args+=(-f compose/tunnel-named.yml)
      args+=(--profile tunnel)
    fi
    ;;
  dev-cpu) args+=(-f docker-compose.yml -f compose/dev-cpu.yml) ;;
  dev) args+=(-f compose/dev.yml) ;;
  *) echo "compose.sh: unknown mode '$mode' (server, dev, dev-cpu, last)" >&2; exit 2 ;;
esac

if [ "${1:-}" = --print ]; then printf '%s\n' "${args[@]}"; exit 0; fi

sub=${1:-}
if [ -z "$(env_get AUTH_USERS)" ]; then
  case $sub in
    up|create|start|run|restart)
      echo "compose.sh: AUTH_USERS is empty in .env - refusing to start: the GPU is never served without auth." >&2
      echo "            Run \`make init\` (new .env) or add user:password entries to AUTH_USERS." >&2
      exit 3 ;;
    down|logs|ps|stop|rm|kill|top|images|exec|--print)
      export AUTH_USERS=placeholder:unused ;;  # these need no real users, only a config that loads
    *) ;;                                      # config etc.: compose itself reports the empty AUTH_USERS
  esac
fi
[ "$sub" = up ] && echo "$mode" > .stack-mode

if [ -n "${COMPOSE_BIN:-}" ]; then
  read -r -a bin <<<"$COMPOSE_BIN"
elif docker compose version >/dev/null 2>&1; then
  bin=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  bin=(docker-compose)
else
  echo "compose.sh: neither \`docker compose\` nor \`docker-compose\` found - see scripts/setup-ubuntu.sh / setup-macos.sh" >&2
  exit 1
fi
exec "${bin[@]}" "${args[@]}" "$@"
