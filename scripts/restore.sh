#!/usr/bin/env bash
# `make restore FILE=backups/ai-local-core-....tar.gz`: put a `make backup` archive back, e.g. on a
# fresh clone after a disk died.
#
#   .env                  replaced by the archived one (mode 600); an existing, different .env is kept
#                         as .env.before-restore-<time>
#   MODELS (DEV_MODELS)   set in .env to the models of the archive (models.tsv), so the next `make up`
#                         has the model-puller pull exactly those (their digests are printed)
#   compose/monitoring/   the archived configuration files written back (`git diff` shows the edits)
#   silences              re-created in Alertmanager with `amtool silence import` when it runs; when it
#                         does not (fresh clone), `make up` first, then `make restore FILE=...` again
#                         (restoring twice changes nothing else)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
file=${1:-}
say() { echo "restore: $*"; }
die() { echo "restore: $*" >&2; exit 1; }
[ -n "$file" ] || die "usage: make restore FILE=backups/ai-local-core-YYYYmmdd-HHMMSS.tar.gz"
case $file in /*) ;; *) file=${ORIG_PWD:-$root}/$file ;; esac
[ -f "$file" ] || die "no such file: $file"

umask 077
stage=$(mktemp -d "${TMPDIR:-/tmp}/alc-restore.XXXXXX")
trap 'rm -rf "$stage"' EXIT
tar -xzf "$file" -C "$stage" 2>/dev/null || die "$file is not a readable .tar.gz"
[ -f "$stage/manifest.txt" ] && [ -f "$stage/env" ] && [ -f "$stage/models.tsv" ] || die "$file is not a make backup archive (no manifest.txt/env/models.tsv)"
mode=$(sed -n 's/^mode: //p' "$stage/manifest.txt")
say "$(sed -n 's/^created: /archive of /p' "$stage/manifest.txt") (commit $(sed -n 's/^commit: //p' "$stage/manifest.txt"), mode ${mode:-server})"

# ---- .env, with MODELS = the archived model list ----------------------------------------------------
mvar=MODELS; [ "${mode:-server}" = server ] || mvar=DEV_MODELS
models=$(cut -f1 "$stage/models.tsv" | awk 'NF' | paste -sd, -)
[ -n "$models" ] || die "the archive lists no models"
# the archived .env's own order first (its first entry is usually MODEL_DEFAULT), then the others
old_list=$(sed -n "s/^[[:space:]]*$mvar[[:space:]]*=//p" "$stage/env" | tail -n 1 | tr -d ' ')
ordered=$(printf '%s\n%s\n' "$(printf '%s' "$old_list" | tr ',' '\n')" "$(printf '%s' "$models" | tr ',' '\n')" |
  awk -v want=",$models," 'NF { n = $0; if (n !~ /:/) n = n ":latest"; if ((index(want, "," $0 ",") || index(want, "," n ",")) && !seen[n]++) print $0 }' | paste -sd, -)
awk -v k="$mvar" -v v="$ordered" 'BEGIN { done = 0 }
  $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { if (!done) print k "=" v; done = 1; next }
  { print } END { if (!done) print k "=" v }' "$stage/env" > "$stage/env.new"
if [ -f .env ] && ! cmp -s .env "$stage/env.new"; then
  saved=.env.before-restore-$(date +%Y%m%d-%H%M%S)
  cp -p .env "$saved"; chmod 600 "$saved"
  say "the current .env differs: kept as $saved"
fi
cp "$stage/env.new" .env.restore.tmp && chmod 600 .env.restore.tmp && mv .env.restore.tmp .env
say ".env restored (mode 600); $mvar=$ordered"
say "models (name, id, size) - the next \`make up\` pulls exactly these:"
awk -F'\t' '{ printf "           %-28s %-14s %s\n", $1, $2, $3 }' "$stage/models.tsv"

# ---- monitoring configuration -------------------------------------------------------------------------
if [ -d "$stage/monitoring" ]; then
  mkdir -p compose/monitoring
  changed=""
  while IFS= read -r -d '' f; do
    f=${f#./}
    if ! cmp -s "$stage/monitoring/$f" "compose/monitoring/$f" 2>/dev/null; then
      mkdir -p "compose/monitoring/$(dirname "$f")"
      cp "$stage/monitoring/$f" "compose/monitoring/$f"
      changed="$changed $f"
    fi
  done < <(cd "$stage/monitoring" && find . -type f -print0)
  if [ -n "$changed" ]; then say "compose/monitoring/ written back:$changed (\`git diff\` shows them)"
  else say "compose/monitoring/: already the same"; fi
fi

# ---- silences ---------------------------------------------------------------------------------------------
if [ -f "$stage/silences.json" ]; then
  n=$(grep -o '"id":' "$stage/silences.json" | wc -l | tr -d ' ')
  project=$(sed -n 's/^[[:space:]]*COMPOSE_PROJECT_NAME[[:space:]]*=//p' .env | tail -n 1); project=${project:-ai-local-core}
  ac=""
  command -v docker >/dev/null 2>&1 && ac=$(timeout 20 docker ps -q --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=alertmanager" 2>/dev/null | head -n 1)
  if [ "$n" = 0 ]; then
    say "silences: none in the archive"
  elif [ -n "$ac" ]; then
    # the ids are Alertmanager's own: a silence that still exists is updated, a missing one re-created
    timeout 60 docker exec -i "$ac" amtool --alertmanager.url=http://127.0.0.1:9093 silence import < "$stage/silences.json" \
      || die "amtool silence import failed"
    say "silences: $n re-created in alertmanager"
  else
    say "silences: $n in the archive, but alertmanager is not running - after \`make up\`, run \`make restore FILE=$1\` again to re-create them"
  fi
fi
say "done - next: \`make doctor\`, then \`make up\`"
