#!/usr/bin/env bash
# `make up` / `make dev` / `make dev-cpu`: create .env if missing, start the combination, wait until
# /health answers through nginx, say where the stack is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=${1:?usage: up.sh server|dev|dev-cpu}

if [ ! -f .env ]; then
  echo "up: no .env yet - running \`make init\` first"
  scripts/init-env.sh
fi
env_get() { sed -n "s/^[[:space:]]*$1[[:space:]]*=//p" .env | tail -n 1; }

# The published port is plain HTTP with basic auth: on anything but loopback, every password crosses
# the LAN in clear text (base64). Refuse unless the owner opts in explicitly.
bind=${HTTP_BIND-$(env_get HTTP_BIND)}; bind=${bind:-127.0.0.1}
case $bind in
  127.*|localhost|::1|'[::1]') ;;
  *)
    allow=${ALLOW_LAN_BIND-$(env_get ALLOW_LAN_BIND)}
    case $allow in
      1|true|yes) echo "up: WARNING: HTTP_BIND=$bind publishes plain HTTP with basic auth beyond this machine (ALLOW_LAN_BIND=$allow)" >&2 ;;
      *)
        echo "up: refusing HTTP_BIND=$bind: the port is plain HTTP, so basic-auth passwords would cross the network in clear" >&2
        echo "    text (base64) for anyone on the LAN to read. Keep HTTP_BIND=127.0.0.1 and reach it through the tunnel or" >&2
        echo "    an SSH tunnel (ssh -L 8080:127.0.0.1:8080 server), or set ALLOW_LAN_BIND=1 in .env if you accept that." >&2
        exit 1 ;;
    esac ;;
esac

# The socket proxy runs as nobody with the Docker socket's group: take it from the socket when .env
# does not say (Docker: root:docker 0660; the group id differs between hosts).
if [ -z "${DOCKER_GID:-}" ] && [ -z "$(env_get DOCKER_GID)" ] && [ -S "${DOCKER_SOCK_PATH:-/var/run/docker.sock}" ]; then
  DOCKER_GID=$(stat -c %g "${DOCKER_SOCK_PATH:-/var/run/docker.sock}" 2>/dev/null || stat -f %g "${DOCKER_SOCK_PATH:-/var/run/docker.sock}" 2>/dev/null || true)
  [ -z "$DOCKER_GID" ] || export DOCKER_GID
fi
# ---- doctor (issue 14): the quick checks first, so a missing engine is one clear line, not a traceback
# (UP_DOCTOR=0 skips them: only for tests that stand in for compose itself)
if [ "${UP_DOCTOR:-1}" != 0 ] && ! scripts/doctor.sh --quick "$mode"; then
  echo "up: stopped before compose - fix the FAIL line(s) above (\`make doctor\` runs every check)" >&2
  exit 1
fi
# ---- end doctor

if [ "$mode" = dev ]; then
  # the Mac's native Ollama.app (Metal) serves the models; pull the small ones with its own CLI
  if ! curl -fsS -m 3 -o /dev/null http://127.0.0.1:11434/api/version; then
    echo "up: Ollama.app does not answer on 127.0.0.1:11434 - start it (scripts/setup-macos.sh), or use \`make dev-cpu\`" >&2
    exit 1
  fi
  models=$(env_get DEV_MODELS); warm=$(env_get DEV_MODEL_DEFAULT); keep=$(env_get OLLAMA_KEEP_ALIVE)
  MODELS=${models:-llama3.2:3b,phi3:mini,nomic-embed-text,moondream} WARM_MODEL=${warm:-llama3.2:3b} WARM_KEEP_ALIVE=${keep:-24h} \
    OLLAMA_HOST=127.0.0.1:11434 sh docker/model-puller/pull-models.sh
fi

start=$(date +%s)
if [ "$mode" != dev ]; then
  echo "up: ollama starts, then the model-puller makes sure of the models (the first run downloads"
  echo "    several GB and can take a while; \`make logs\` in another terminal shows the progress)"
fi
rc=0
scripts/compose.sh "$mode" up -d --build --remove-orphans || rc=$?
[ "$rc" = 3 ] && exit 1   # refused: AUTH_USERS is empty (compose.sh said so)
if [ "$rc" != 0 ]; then
  # compose alone only says that a dependency failed; show why (e.g. the model that could not be pulled)
  if [ "$mode" != dev ]; then
    echo "up: last lines of the model-puller:" >&2
    scripts/compose.sh "$mode" logs --no-color --tail=15 model-puller >&2 || true
  fi
  scripts/compose.sh "$mode" ps >&2 || true
  echo "up: FAILED - see above, and \`make logs\`" >&2
  exit 1
fi

port=${HTTP_PORT:-$(env_get HTTP_PORT)}; port=${port:-8080}
printf 'up: waiting for http://127.0.0.1:%s/health ' "$port"
for _ in $(seq 90); do
  if curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null; then
    echo "ok ($(( $(date +%s) - start )) s)"
    echo "up: the API is at http://127.0.0.1:$port (users and passwords: AUTH_USERS in .env)"
    if [ "$mode" = server ]; then
      case $(env_get TUNNEL) in
        0) ;;
        tailscale) echo "up: on your tailnet: https://$(env_get TS_HOSTNAME).<tailnet>.ts.net (\`make doctor\` prints the exact name)" ;;
        *) echo "up: public URL: \`make tunnel-url\`" ;;
      esac
    fi
    exit 0
  fi
  printf '.'; sleep 2
done
echo " no answer after 180 s" >&2
scripts/compose.sh "$mode" ps >&2
echo "up: see \`make logs\`" >&2
exit 1
