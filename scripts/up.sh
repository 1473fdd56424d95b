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
    [ "$mode" = server ] && [ "$(env_get TUNNEL)" != 0 ] && echo "up: public URL: \`make tunnel-url\`"
    exit 0
  fi
  printf '.'; sleep 2
done
echo " no answer after 180 s" >&2
scripts/compose.sh "$mode" ps >&2
echo "up: see \`make logs\`" >&2
exit 1
