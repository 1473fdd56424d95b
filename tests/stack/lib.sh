# Shared helpers for the podman-stack runs under tests/stack/ (sourced, not run). The conventions are
# smoke.sh's: the tool next to the repo (../shared/tools/podman-stack, or PODMAN_STACK=path), root,
# a temporary copy of the working tree with its own .env (`make init`), its own compose project name,
# free ports, its own podman API service (PODMAN_STACK_SOCK) that is stopped at the end, and a cleanup
# that takes down only this run's project. smoke.sh, monitoring.sh and their helpers share them.
#
# The caller sets LIB_NAME (the prefix of its messages) and LIB_P (project name prefix), then:
#   lib_init               checks, tmp dir, project name, PODMAN_STACK_* ($tmp, $copy, $P, $PS)
#   lib_setup              podman-stack setup (exports DOCKER_HOST ...), the tree copied to $copy
#   trap lib_cleanup EXIT  down -v + leftovers of $P + the API service + $tmp (STACK_KEEP=1 keeps them)
# LIB_DOWN_ARGS (array): the compose arguments `down` needs (set once the files are known).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))
ENGINE=(node "$here/engine.js")
T_START=$(date +%s.%N)
LIB_DOWN_ARGS=()

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%s %6.1fs] %s\n' "$LIB_NAME" "$(since "$T_START")" "$*"; }
indent() { sed 's/^/    | /'; }
ok() { echo "    ok: $*"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
# 0 when something accepts a TCP connection on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

lib_init() {
  PS=${PODMAN_STACK:-$root/../shared/tools/podman-stack/podman-stack}
  local missing=() tool
  [ -x "$PS" ] || missing+=("the podman-stack tool is not at $PS")
  [ "$(id -u)" = 0 ] || missing+=("not root (uid $(id -u))")
  for tool in curl node make awk sed tar; do
    command -v "$tool" >/dev/null || missing+=("$tool not found")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local reason
    reason=$(IFS=';'; printf '%s' "${missing[*]}" | sed 's/;/; /g')
    exec "$root/scripts/test-skip.sh" "$LIB_NAME (tests/stack/$(basename "$0"))" "$reason" \
      "as root: PODMAN_STACK=<path of the podman-stack tool> tests/stack/$(basename "$0")"
  fi
  PS=$(readlink -f "$PS")
  # nothing from the caller's environment may change the stack: every .env key and compose's own knobs
  local key
  while IFS='=' read -r key _; do unset "$key"; done < <(sed -n 's/^\(# \)\{0,1\}\([A-Z][A-Z0-9_]*\)=.*/\2=/p' "$root/.env.example")
  unset COMPOSE_FILE COMPOSE_PROFILES COMPOSE_PROJECT_NAME COMPOSE_PATH_SEPARATOR STACK_ENV_FILE DOCKER_CONTEXT
  export COMPOSE_BIN=docker-compose          # podman-stack drives docker-compose 1.29
  export COMPOSE_HTTP_TIMEOUT=300            # the api build through podman's API can be slow on 2 busy cores
  tmp=$(mktemp -d "/tmp/$LIB_P.XXXXXX")
  copy=$tmp/repo
  cd "$tmp"
  P=$LIB_P-$$-$(printf '%s' "${tmp##*.}" | tr 'A-Z' 'a-z')
  export PODMAN_STACK_SOCK=$tmp/podman.sock  # our own API service: stopped at the end, nobody else's touched
  export PODMAN_STACK_STATE=$tmp/podman-stack.d
}

lib_setup() {
  local exports f
  if ! exports=$("$PS" setup); then
    for f in "$PODMAN_STACK_STATE"/*.log; do [ -s "$f" ] && { echo "---- tail of $f:"; tail -n 30 "$f" | indent; }; done >&2
    echo "$LIB_NAME: FAIL: podman-stack setup failed (see above)" >&2
    exit 1
  fi
  eval "$exports"
  # the working tree as it is (tracked + untracked, not ignored: no node_modules, dist, .env)
  mkdir -p "$copy"
  if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$copy"
  else
    (cd "$root" && tar --exclude=node_modules --exclude=dist --exclude=.env --exclude=.stack-mode -cf - .) | tar -xf - -C "$copy"
  fi
  ENGINE=(node "$copy/tests/stack/engine.js")   # the copy's: the run no longer needs the tree it came from
}

# set KEY=value in the copy's .env (replace the line, or append it)
env_set() {
  local k=$1 v=$2
  if grep -q "^$k=" "$copy/.env"; then
    awk -v k="$k" -v v="$v" 'index($0, k "=") == 1 { print k "=" v; next } { print }' "$copy/.env" > "$copy/.env.new"
    mv "$copy/.env.new" "$copy/.env"
  else
    printf '%s=%s\n' "$k" "$v" >> "$copy/.env"
  fi
}
envv() { sed -n "s/^$1=//p" "$copy/.env" | tail -n 1; }

# whatever compose could not remove of this run's project $P (by its label): containers, volumes, networks
remove_leftovers() {
  command -v podman >/dev/null || return 0
  local left
  left=$(podman ps -aq --filter "label=com.docker.compose.project=$P" 2>/dev/null)
  [ -z "$left" ] || { echo "    removing leftover containers: $left"; podman rm -f $left >/dev/null 2>&1; }
  left=$(podman volume ls -q --filter "label=com.docker.compose.project=$P" 2>/dev/null)
  [ -z "$left" ] || { echo "    removing leftover volumes: $left"; podman volume rm -f $left >/dev/null 2>&1; }
  left=$(podman network ls -q --filter "label=com.docker.compose.project=$P" 2>/dev/null)
  [ -z "$left" ] || { echo "    removing leftover networks: $left"; podman network rm -f $left >/dev/null 2>&1; }
}

lib_cleanup() {
  local rc=$?
  set +e
  trap - ERR
  if [ "${STACK_KEEP:-0}" = 1 ]; then
    say "STACK_KEEP=1: left project $P and $tmp (DOCKER_HOST=unix://$PODMAN_STACK_SOCK)"
    echo "    clean up: export PODMAN_STACK_SOCK=$PODMAN_STACK_SOCK PODMAN_STACK_STATE=$PODMAN_STACK_STATE"
    echo "              cd $copy && $PS down ${LIB_DOWN_ARGS[*]}; $PS stop; rm -rf $tmp"
    exit "$rc"
  fi
  say "cleanup: project $P down -v, podman API service of this run stopped, $tmp removed"
  if [ ${#LIB_DOWN_ARGS[@]} -gt 0 ] && [ -n "${DOCKER_HOST:-}" ]; then
    (cd "$copy" && "$PS" down "${LIB_DOWN_ARGS[@]}") >"$tmp/down.log" 2>&1 || { echo "    down failed:"; indent <"$tmp/down.log"; }
  fi
  remove_leftovers
  # only this run's service and loops: PODMAN_STACK_STATE is ours
  "$PS" stop >/dev/null 2>&1
  rm -rf "$tmp"
  say "total $(since "$T_START") s, exit $rc"
  exit "$rc"
}
