#!/usr/bin/env bash
# make backup / make restore against real containers (issue 14): podman's Docker API (via
# ../shared/tools/podman-stack), the ollama stand-in and Alertmanager 0.25 with its real amtool,
# labelled as the compose project of a scratch copy of this tree.
#
#   1 a running "stack": ollama with 3 models (MODELS lists 2, one more pulled by hand), alertmanager
#     with a silence made by amtool, an owner edit in compose/monitoring/
#   2 make backup: archive mode 600, no blobs
#   3 the disk dies: containers and volumes gone; a fresh copy without .env
#   4 make restore (alertmanager down): .env back with MODELS = the 3 models, silence pending
#   5 "make up": new ollama + the model-puller with the restored MODELS -> the same 3 models (same ids);
#     new alertmanager; make restore again -> the silence is back (amtool silence query)
#
# Env: PODMAN_STACK (path of the tool), STACK_KEEP=1 (leave everything for a look).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
PS=${PODMAN_STACK:-$root/../shared/tools/podman-stack/podman-stack}
if [ ! -x "$PS" ] || [ "$(id -u)" != 0 ]; then
  exec "$root/scripts/test-skip.sh" "backup-live (tests/stack/backup-live.sh)" "needs root and the podman-stack tool (looked at $PS)" \
    "as root: PODMAN_STACK=<path of the podman-stack tool> tests/stack/backup-live.sh"
fi
PS=$(readlink -f "$PS")
say() { printf '[backup-live] %s\n' "$*"; }
fail() { echo "backup-live: FAIL: $*" >&2; exit 1; }
ok() { echo "    ok: $*"; }

tmp=$(mktemp -d /tmp/alc-backup-live.XXXXXX)
P=alc-bk-$$
export PODMAN_STACK_SOCK=$tmp/podman.sock PODMAN_STACK_STATE=$tmp/podman-stack.d
unset COMPOSE_PROJECT_NAME MODELS DEV_MODELS BACKUP_DIR BACKUP_KEEP STACK_ENV_FILE
cleanup() {
  local rc=$?
  set +e
  if [ "${STACK_KEEP:-0}" = 1 ]; then say "STACK_KEEP=1: left $tmp, project $P"; exit "$rc"; fi
  local left
  left=$(podman ps -aq --filter "label=com.docker.compose.project=$P" 2>/dev/null)
  [ -z "$left" ] || podman rm -f $left >/dev/null 2>&1
  "$PS" stop >/dev/null 2>&1
  rm -rf "$tmp"
  say "cleanup done, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM

eval "$("$PS" setup)"
ok "podman API on $DOCKER_HOST"
copy() { # a copy of the working tree (tracked + untracked, not ignored)
  mkdir -p "$1"
  (cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$1"
}
run_svc() { # run_svc SERVICE IMAGE: a container labelled as the project's service
  docker run -d --name "$P-$1-$RANDOM" --label "com.docker.compose.project=$P" --label "com.docker.compose.service=$1" "$2" >/dev/null
  docker ps -q --filter "label=com.docker.compose.project=$P" --filter "label=com.docker.compose.service=$1"
}
AM=(amtool --alertmanager.url=http://127.0.0.1:9093)

say "1  a running stack"
A=$tmp/a; copy "$A"
(cd "$A" && make -s init >/dev/null)
sed -i -e "s/^COMPOSE_PROJECT_NAME=.*/COMPOSE_PROJECT_NAME=$P/" -e "s/^MODELS=.*/MODELS=qwen2.5:0.5b,all-minilm/" "$A/.env"
mkdir -p "$A/compose/monitoring"
echo "# owner edit $(date +%s): page me at 80 C" >> "$A/compose/monitoring/owner-edit.yml"
ol=$(run_svc ollama localhost/podman-stack/ollama:standin)
am=$(run_svc alertmanager localhost/podman-stack/alertmanager:standin)
for _ in $(seq 30); do docker exec "$ol" ollama list >/dev/null 2>&1 && docker exec "$am" "${AM[@]}" config show >/dev/null 2>&1 && break; sleep 1; done
for m in qwen2.5:0.5b all-minilm llama3.2:1b; do docker exec "$ol" ollama pull "$m" >/dev/null 2>&1 || fail "pull $m"; done
before=$(docker exec "$ol" ollama list | awk 'NR > 1 { print $1, $2 }' | sort)
printf '%s\n' "$before" | sed 's/^/    | /'
sid=$(docker exec "$am" "${AM[@]}" silence add alertname=GpuTooHot --comment="fan replaced, ignore until Friday" --duration=48h -a owner)
ok "silence $sid"

say "2  make backup"
(cd "$A" && make -s backup) | sed 's/^/    | /'
file=$(ls "$A"/backups/ai-local-core-*.tar.gz)
[ "$(stat -c %a "$file")" = 600 ] || fail "archive mode $(stat -c %a "$file")"
tar -tzvf "$file" | sed 's/^/    | /'
[ "$(tar -tzvf "$file" | awk '{ s += $3 } END { print s }')" -lt 1000000 ] || fail "archive content over 1 MB (blobs?)"
ok "archive $(basename "$file"), mode 600, $(wc -c < "$file") bytes"
cp "$file" "$tmp/"; file=$tmp/$(basename "$file")

say "3  the disk dies"
docker rm -f "$ol" "$am" >/dev/null
[ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$P")" ] || fail "containers left"
B=$tmp/b; copy "$B"
[ ! -f "$B/.env" ] || fail "fresh copy has a .env"

say "4  make restore on the fresh copy (nothing running)"
out=$(cd "$B" && make -s restore FILE="$file"); printf '%s\n' "$out" | sed 's/^/    | /'
[ "$(stat -c %a "$B/.env")" = 600 ] || fail ".env mode"
[ "$(sed -n 's/^MODELS=//p' "$B/.env")" = "qwen2.5:0.5b,all-minilm,llama3.2:1b" ] || fail "MODELS: $(sed -n 's/^MODELS=//p' "$B/.env")"
diff <(grep -v '^MODELS=' "$A/.env") <(grep -v '^MODELS=' "$B/.env") >/dev/null || fail ".env differs beyond MODELS"
cmp -s "$A/compose/monitoring/owner-edit.yml" "$B/compose/monitoring/owner-edit.yml" || fail "monitoring edit not restored"
printf '%s\n' "$out" | grep -q "alertmanager is not running - after \`make up\`" || fail "no hint about the silences"
ok ".env (mode 600, MODELS = the 3 models), monitoring edit back; silences wait for alertmanager"

say "5  make up: the puller pulls exactly those models; make restore again re-creates the silence"
ol=$(run_svc ollama localhost/podman-stack/ollama:standin)
am=$(run_svc alertmanager localhost/podman-stack/alertmanager:standin)
for _ in $(seq 30); do docker exec "$ol" ollama list >/dev/null 2>&1 && docker exec "$am" "${AM[@]}" config show >/dev/null 2>&1 && break; sleep 1; done
docker exec -i -e "MODELS=$(sed -n 's/^MODELS=//p' "$B/.env")" -e OLLAMA_HOST=127.0.0.1:11434 "$ol" sh -s \
  < "$B/docker/model-puller/pull-models.sh" 2>&1 | grep -E 'pulled in|present|FAILED' | sed 's/^/    | /'
after=$(docker exec "$ol" ollama list | awk 'NR > 1 { print $1, $2 }' | sort)
[ "$after" = "$before" ] || fail "models after restore + pull differ: $after (before: $before)"
ok "ollama has the same models with the same ids: $(printf '%s' "$after" | tr '\n' ' ')"
[ -z "$(docker exec "$am" "${AM[@]}" silence query -q)" ] || fail "the new alertmanager already has silences"
(cd "$B" && make -s restore FILE="$file") | grep silences | sed 's/^/    | /'
got=$(docker exec "$am" "${AM[@]}" silence query -o json)
printf '%s\n' "$got" | grep -q '"comment":"fan replaced, ignore until Friday"' || fail "silence not re-created: $got"
printf '%s\n' "$got" | grep -q '"name":"alertname","value":"GpuTooHot"' || fail "silence matcher: $got"
ok "silence back: $(docker exec "$am" "${AM[@]}" silence query | tail -n +2 | tr -s ' ' | cut -c1-120)"
say "all steps passed"
