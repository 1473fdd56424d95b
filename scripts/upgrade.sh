#!/usr/bin/env bash
# `make upgrade`: bring the running stack to the versions pinned in the checked-out commit
# (`git pull` first), safely:
#   1 the quick doctor checks; the image IDs every running service uses now are recorded
#   2 the new images are pulled (and the api built) while everything keeps running - a failed
#     download changes nothing
#   3 `compose up -d`: compose recreates only the services whose image or configuration changed
#   4 waits until api and nginx are healthy (UPGRADE_WAIT_S, default 180 s)
#   5 if they do not become healthy: the previous image IDs are tagged back under the names the
#     compose files use and `up -d` runs again, so the services run their previous images; says so
# Volumes (the models) are never touched. Details and how to upgrade Ollama: docs/operations.md.
#
# Env: UPGRADE_WAIT_S; like scripts/compose.sh (COMPOSE_BIN, DOCKER_HOST, .env).
# Exit: 0 upgraded (or nothing to do), 1 failed before changing anything, 2 rolled back, 3 rollback failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mode=$(cat .stack-mode 2>/dev/null || echo server)
C=(scripts/compose.sh "$mode")
wait_s=${UPGRADE_WAIT_S:-180}
say() { echo "upgrade: $*"; }
die() { echo "upgrade: $*" >&2; exit "${2:-1}"; }

[ -f .env ] || die "no .env - nothing to upgrade (make init, make up)"
scripts/doctor.sh --quick "$mode" >/dev/null || { scripts/doctor.sh --quick "$mode" || true; die "fix the doctor's FAIL line(s) first"; }
env_get() { sed -n "s/^[[:space:]]*$1[[:space:]]*=//p" .env | tail -n 1; }
project=${COMPOSE_PROJECT_NAME:-$(env_get COMPOSE_PROJECT_NAME)}; project=${project:-ai-local-core}

# service -> container id of the running stack
containers() { docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Label "com.docker.compose.service"}} {{.ID}}' | sort; }
health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$1" 2>/dev/null || echo gone; }

# ---- 1 what runs now ------------------------------------------------------------------------------------
before=$(containers)
[ -n "$before" ] || die "the stack ($project) is not running - \`make up\` starts it at this checkout's versions"
state=.upgrade-previous   # service image-id name container-id, one line each (kept for a look afterwards)
{ echo "# make upgrade $(date -u +%Y-%m-%dT%H:%M:%SZ): what ran before (service image-id image-name container-id)"
  while read -r svc cid; do
    [ -n "$svc" ] || continue
    echo "$svc $(docker inspect -f '{{.Image}} {{.Config.Image}}' "$cid") $cid"
  done <<<"$before"; } > "$state"
prev() { awk -v s="$2" -v f="$1" '$1 == s { print $f; exit }' "$state"; }   # prev FIELD(2 id, 3 name, 4 cid) SERVICE
say "running now ($project, mode $mode): $(awk '!/^#/ { printf "%s=%s ", $1, $3 }' "$state")"

# ---- 2 download first ------------------------------------------------------------------------------------
cfg=$("${C[@]}" config) || die "compose config failed - nothing changed"
# services with build: (the api) are built, the others pulled
built=$(printf '%s\n' "$cfg" | awk '/^services:/ { in_s = 1; next } /^[^ ]/ { in_s = 0 } in_s && /^  [A-Za-z0-9_.-]+:$/ { s = $1; sub(/:$/, "", s) } in_s && /^    build:/ { print s }' | sort -u)
image_names() { # service image, from compose config on stdin
  awk '/^services:/ { in_s = 1; next } /^[^ ]/ { in_s = 0 } in_s && /^  [A-Za-z0-9_.-]+:$/ { s = $1; sub(/:$/, "", s) }
       in_s && /^    image: / { print s, $2 }'
}
services=$("${C[@]}" config --services | sort)
pull=$(comm -23 <(printf '%s\n' "$services") <(printf '%s\n' "$built") | tr '\n' ' ')
say "pulling ${pull:-nothing} (the stack keeps running)"
if [ -n "${pull// /}" ]; then
  # shellcheck disable=SC2086
  "${C[@]}" pull $pull || die "pull failed - nothing changed, the stack runs as before"
fi
if [ -n "$built" ]; then
  say "building $(printf '%s' "$built" | tr '\n' ' ')"
  # shellcheck disable=SC2086
  "${C[@]}" build $built || die "build failed - nothing changed, the stack runs as before"
fi

# ---- 3 recreate what changed -------------------------------------------------------------------------------
say "compose up -d: recreates only what changed"
up_rc=0
"${C[@]}" up -d --remove-orphans || up_rc=$?
after=$(containers)
changed=""
while read -r svc cid; do
  [ -n "$svc" ] || continue
  [ "$(prev 4 "$svc")" = "$cid" ] || changed="$changed $svc"
done <<<"$after"
say "recreated:${changed:- nothing (already at the versions of this checkout)}"

# ---- 4 wait for api and nginx ------------------------------------------------------------------------------
wait_healthy() {
  local deadline=$((SECONDS + wait_s)) s cid h all
  while :; do
    all=1
    for s in api nginx; do
      cid=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$s" | head -n 1)
      h=gone; [ -z "$cid" ] || h=$(health "$cid")
      [ "$h" = healthy ] || all=0
      [ "$h" = unhealthy ] && { echo "$s unhealthy"; return 1; }
    done
    [ "$all" = 1 ] && return 0
    [ $SECONDS -lt $deadline ] || { echo "api/nginx not healthy after ${wait_s} s"; return 1; }
    sleep 2
  done
}
if [ "$up_rc" = 0 ] && why=$(wait_healthy); then
  say "done: api and nginx healthy. Images now: $(printf '%s\n' "$cfg" | image_names | awk '{ printf "%s=%s ", $1, $2 }')"
  say "after an Ollama upgrade the first request to each model is slower (it loads again): docs/operations.md"
  exit 0
fi
[ "$up_rc" = 0 ] || why="compose up exited $up_rc"

# ---- 5 roll back -------------------------------------------------------------------------------------------
echo "upgrade: FAILED ($why) - putting the previous images back" >&2
"${C[@]}" ps >&2 || true
for s in api nginx; do
  echo "---- last 20 log lines of $s:" >&2
  "${C[@]}" logs --no-color --tail=20 "$s" >&2 2>&1 || true
done
# the names the compose files now use, per service: tag the previous image ID under each
restored=""
while read -r svc name; do
  id=$(prev 2 "$svc"); [ -n "$id" ] || continue
  [ "$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)" != "$id" ] || continue
  docker tag "$id" "$name" || die "could not tag $id as $name - see $state" 3
  restored="$restored $svc"
  echo "upgrade: $svc: $name now points at the previous image ${id:0:19} (was $(prev 3 "$svc"))" >&2
done < <(printf '%s\n' "$cfg" | image_names)
"${C[@]}" up -d --remove-orphans >&2 || die "rollback: compose up failed - see \`make ps\`, .upgrade-previous" 3
if why2=$(wait_healthy); then
  echo "upgrade: ROLLED BACK:${restored:- (no image had changed: the cause is the configuration of this checkout)}; api and nginx healthy again on the previous images." >&2
  echo "upgrade: the configuration (.env, compose files) of this checkout stays; to go back fully: \`git checkout <previous commit> && make up\`." >&2
  echo "upgrade: a retagged name is not the registry's image: \`make upgrade\` pulls it again on the next try." >&2
  exit 2
fi
die "rollback did not become healthy either ($why2) - \`make ps\`, \`make logs\`, .upgrade-previous lists the previous image IDs" 3
