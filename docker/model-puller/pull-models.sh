#!/bin/sh
# model-puller: make sure every model in MODELS is present in Ollama, then warm WARM_MODEL.
#
# Runs in the ollama image as a one-shot service (OLLAMA_HOST=ollama:11434), and on the Mac with the
# host's `ollama` CLI against Ollama.app (`make dev`). Exit 0 when all models are present (a model
# that is already there is not pulled again, so a second `make up` is fast and works offline);
# exit 1 naming the model that could not be pulled - the api is then never started.
#
#   MODELS           models, comma or space separated (required)
#   WARM_MODEL       loaded once at the end with WARM_KEEP_ALIVE, so the first request is warm (optional)
#   WARM_KEEP_ALIVE  keep-alive for the warm-up (default 24h)
set -eu

log() { printf '%s model-puller: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

models=$(printf '%s' "${MODELS:-}" | tr ',' ' ')
[ -n "$(printf '%s' "$models" | tr -d ' ')" ] || { log "MODELS is empty - nothing to pull" >&2; exit 1; }

# the server may still be starting (the compose healthcheck already waited for it; the Mac may not)
tries=0
until ollama list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then log "ollama at ${OLLAMA_HOST:-127.0.0.1:11434} does not answer" >&2; exit 1; fi
  sleep 2
done

count=0
for m in $models; do
  count=$((count + 1))
  if ollama show "$m" >/dev/null 2>&1; then
    log "[$count] $m: present"
    continue
  fi
  log "[$count] $m: pulling ..."
  start=$(date +%s)
  if ! ollama pull "$m"; then
    log "FAILED to pull model '$m' (is the name right? see https://ollama.com/library; disk full?)" >&2
    exit 1
  fi
  log "[$count] $m: pulled in $(( $(date +%s) - start )) s"
done

if [ -n "${WARM_MODEL:-}" ]; then
  log "warming $WARM_MODEL (keep-alive ${WARM_KEEP_ALIVE:-24h}) ..."
  start=$(date +%s)
  # an empty prompt only loads the model; a failure here (e.g. not enough memory) is reported but
  # does not block the stack: the api reports it per request and the owner can fix MODELS/NUM_CTX
  if ollama run "$WARM_MODEL" --keepalive "${WARM_KEEP_ALIVE:-24h}" "" </dev/null >/dev/null; then
    log "warmed $WARM_MODEL in $(( $(date +%s) - start )) s"
  else
    log "WARNING: could not load $WARM_MODEL for warm-up; the first request will try again" >&2
  fi
fi
log "all $count model(s) present"
