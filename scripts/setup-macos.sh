#!/usr/bin/env bash
# Checks the MacBook (M1) for `make dev`: Docker Desktop running, Compose v2, the native Ollama.app
# answering on 127.0.0.1:11434. Installs nothing; says what is missing and how to get it.
# For `make test` / `make local` on the Mac also: nginx and envsubst (brew install nginx gettext).
set -uo pipefail

ok=1
check() { # description, command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then echo "  ok       $what"; else echo "  MISSING  $what"; ok=0; fi
}
echo "ai-local-core on macOS:"
check "Docker Desktop running (docker info)"          docker info
check "Compose v2 (docker compose version)"            docker compose version
check "Ollama.app answering on 127.0.0.1:11434"        curl -fsS -m 3 http://127.0.0.1:11434/api/version
check "ollama CLI on PATH (make dev pulls with it)"    command -v ollama
check "make"                                            command -v make
check "nginx (make test / make local only)"            command -v nginx
check "envsubst (make test / make local only)"         command -v envsubst

mem=$(docker info --format '{{.MemTotal}}' 2>/dev/null || echo 0)
if [ "${mem:-0}" -gt 0 ] && [ "$mem" -lt $((4 * 1024 * 1024 * 1024)) ]; then
  echo "  NOTE     Docker Desktop has $((mem / 1024 / 1024)) MiB; give it >= 4 GB (8 GB for make dev-cpu)"
fi
# The api pins num_ctx (NUM_CTX, 4096); Ollama.app must use the same default context, or calls on
# the OpenAI-compatible surface (which cannot send num_ctx) make it reload the model each time.
ctx=$(launchctl getenv OLLAMA_CONTEXT_LENGTH 2>/dev/null || true)
if [ "${ctx:-}" != "${NUM_CTX:-4096}" ]; then
  echo "  NOTE     Ollama.app's context length is '${ctx:-its default}'; to match the api run:"
  echo "           launchctl setenv OLLAMA_CONTEXT_LENGTH ${NUM_CTX:-4096}   then restart Ollama.app"
fi
if [ "$ok" = 1 ]; then
  echo "ready: make dev   (or make dev-cpu to run ollama in a container on the CPU instead)"
  exit 0
fi
cat <<'HELP'
how to get what is missing:
  Docker Desktop:  brew install --cask docker   (then start it once from /Applications)
  Ollama.app:      brew install --cask ollama   (start it; it serves on 127.0.0.1:11434 with Metal)
  nginx, envsubst: brew install nginx gettext
HELP
exit 1
