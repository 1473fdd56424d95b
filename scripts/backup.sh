#!/usr/bin/env bash
# `make backup`: one archive with what cannot be downloaded again - never the model blobs (a pull
# brings them back). Into BACKUP_DIR (default: backups/ in the repo, git-ignored), mode 600, the
# newest BACKUP_KEEP (default 14) kept. `make restore FILE=...` puts it back (scripts/restore.sh).
#
#   ai-local-core-YYYYmmdd-HHMMSS.tar.gz
#     manifest.txt        when, which commit, mode, project, what is inside
#     env                 the .env (passwords, MODELS, tokens)
#     models.tsv          name <TAB> id (digest) <TAB> size of every model in ollama (`ollama list` in
#                         the ollama container, or Ollama.app's CLI in dev mode); without a running
#                         ollama: MODELS from .env, id "-"
#     monitoring/         compose/monitoring/ (the owner may have edited rules, receivers)
#     rendered/           the config the running Prometheus / Alertmanager loaded (for reference)
#     silences.json       Alertmanager's active silences (`amtool silence query -o json`), when it runs
#
# Env (environment first, then .env): BACKUP_DIR, BACKUP_KEEP, COMPOSE_PROJECT_NAME; DOCKER_HOST.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"
say() { echo "backup: $*"; }
die() { echo "backup: $*" >&2; exit 1; }

[ -f "$env_file" ] || die "no $env_file - nothing to back up (make init creates one)"
dir=$(env_get BACKUP_DIR); dir=${dir:-backups}
keep=$(env_get BACKUP_KEEP); keep=${keep:-14}
case $keep in ''|*[!0-9]*|0) die "BACKUP_KEEP must be a number >= 1 (is '$keep')" ;; esac
project=$(env_get COMPOSE_PROJECT_NAME); project=${project:-ai-local-core}
mode=$(cat .stack-mode 2>/dev/null || echo server)

umask 077
stage=$(mktemp -d "${TMPDIR:-/tmp}/alc-backup.XXXXXX")
trap 'rm -rf "$stage"' EXIT

have() { command -v "$1" >/dev/null 2>&1; }
cid() { # the running container of a service of this project
  have docker || return 0
  timeout 20 docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1" 2>/dev/null | head -n 1
}

cp "$env_file" "$stage/env"
contents="env"

# ---- models: name, digest, size ------------------------------------------------------------------
list="" src=""
if [ "$mode" = dev ] && have ollama; then
  list=$(ollama list 2>/dev/null) && src="Ollama.app (ollama list)"
elif oc=$(cid ollama) && [ -n "$oc" ]; then
  list=$(timeout 60 docker exec "$oc" ollama list 2>/dev/null) && src="the ollama container (ollama list)"
fi
if [ -n "$src" ]; then
  printf '%s\n' "$list" | awk 'NR > 1 && NF >= 3 { print $1 "\t" $2 "\t" $3 $4 }' > "$stage/models.tsv"
else
  mvar=MODELS; [ "$mode" = server ] || mvar=DEV_MODELS
  env_get $mvar | tr ',' '\n' | sed 's/^ *//; s/ *$//' | awk 'NF { print $1 "\t-\t-" }' > "$stage/models.tsv"
  src="$mvar in .env (ollama not running: no digests)"
fi
contents="$contents models.tsv"
say "models from $src: $(cut -f1 "$stage/models.tsv" | tr '\n' ' ')"

# ---- monitoring configuration ----------------------------------------------------------------------
if [ -d compose/monitoring ]; then
  mkdir -p "$stage/monitoring"
  # configuration only: no data directories, nothing big
  (cd compose/monitoring && find . -type f -size -2M ! -path '*/data/*' -print0 | tar --null -T - -cf -) | tar -xf - -C "$stage/monitoring"
  contents="$contents monitoring/"
  say "monitoring configuration: $(cd "$stage/monitoring" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ')"
fi
if pc=$(cid prometheus) && [ -n "$pc" ]; then
  mkdir -p "$stage/rendered"
  timeout 20 docker exec "$pc" wget -q -T 5 -O - http://127.0.0.1:9090/api/v1/status/config > "$stage/rendered/prometheus-config.json" 2>/dev/null \
    || rm -f "$stage/rendered/prometheus-config.json"
fi

# ---- Alertmanager silences -------------------------------------------------------------------------
if ac=$(cid alertmanager) && [ -n "$ac" ]; then
  mkdir -p "$stage/rendered"
  timeout 20 docker exec "$ac" amtool --alertmanager.url=http://127.0.0.1:9093 config show > "$stage/rendered/alertmanager.yml" 2>/dev/null \
    || rm -f "$stage/rendered/alertmanager.yml"
  if timeout 30 docker exec "$ac" amtool --alertmanager.url=http://127.0.0.1:9093 silence query -o json > "$stage/silences.json"; then
    n=$(grep -o '"id":' "$stage/silences.json" | wc -l | tr -d ' ')
    say "alertmanager: $n active silence(s)"
    contents="$contents silences.json"
  else
    rm -f "$stage/silences.json"
    die "alertmanager runs but its silences could not be read (amtool silence query failed)"
  fi
else
  say "alertmanager not running: no silences to save"
fi
[ -d "$stage/rendered" ] && [ -n "$(ls -A "$stage/rendered")" ] && contents="$contents rendered/"

{
  echo "ai-local-core backup"
  echo "created: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "mode: $mode"
  echo "project: $project"
  echo "contents: $contents"
} > "$stage/manifest.txt"

mkdir -p "$dir"
name=ai-local-core-$(date +%Y%m%d-%H%M%S).tar.gz
n=0; while [ -e "$dir/$name" ]; do n=$((n + 1)); name=ai-local-core-$(date +%Y%m%d-%H%M%S)-$n.tar.gz; done
tar -C "$stage" -czf "$dir/$name.tmp" .
chmod 600 "$dir/$name.tmp"
mv "$dir/$name.tmp" "$dir/$name"
say "wrote $dir/$name ($(wc -c < "$dir/$name" | tr -d ' ') bytes, mode 600): $contents"

# keep the newest BACKUP_KEEP (by name: the time is in it; same-second ones by their -N suffix)
old=$(ls -1 "$dir" | grep -E '^ai-local-core-[0-9]{8}-[0-9]{6}(-[0-9]+)?\.tar\.gz$' |
  sed -E 's/^(ai-local-core-[0-9]{8}-[0-9]{6})\.tar\.gz$/\1-0.tar.gz =\0/; t; s/^(.*)$/\1 =\1/' |
  sort -t- -k4,4r -k5,5r -k6,6nr | sed 's/^.* =//' | tail -n +"$((keep + 1))" || true)
for f in $old; do rm -f "$dir/$f"; say "removed old backup $dir/$f (BACKUP_KEEP=$keep)"; done
