#!/usr/bin/env bash
# The podman-stack sub-commands tests/stack/smoke.sh uses, for the owner's own Docker engine
# (STACK_ENGINE=docker): the same smoke steps against the real pinned images, no stand-ins.
#
#   setup            the engine answers; prints the export lines smoke.sh evals (DOCKER_HOST,
#                    DOCKER_SOCK_PATH, DOCKER_GID = the socket's group)
#   tag COMPOSE_ARGS pulls the images of that combination that are not there yet (the api is built by
#                    `make up`); a real registry, nothing tagged
#   health-loop P    Docker runs healthchecks by itself: waits until killed. STACK_HEALTH_LOOP names a
#                    driver to exec instead, for an engine that does not (podman's API: its tool's
#                    `health-loop`)
#   down COMPOSE_ARGS [-- ARGS]   compose ARGS down -v
#   stop             nothing to stop (the engine is the owner's)
set -euo pipefail
cmd=${1:?usage: docker-engine.sh setup|tag|health-loop|down|stop ...}
shift
compose() {
  local b
  if [ -n "${COMPOSE_BIN:-}" ]; then read -r -a b <<<"$COMPOSE_BIN"
  elif docker compose version >/dev/null 2>&1; then b=(docker compose)
  else b=(docker-compose); fi
  "${b[@]}" "$@"
}
case $cmd in
  setup)
    h=${DOCKER_HOST:-unix:///var/run/docker.sock}
    if ! v=$(docker version --format '{{.Server.Version}}' 2>&1); then
      echo "docker-engine: no engine answers at $h: $v" >&2
      exit 1
    fi
    echo "docker-engine: engine $v at $h" >&2
    sock=${h#unix://}
    printf 'export DOCKER_HOST=%s\n' "$h"
    case $h in unix://*)
      printf 'export DOCKER_SOCK_PATH=%s\n' "$sock"
      printf 'export DOCKER_GID=%s\n' "$(stat -c %g "$sock" 2>/dev/null || stat -f %g "$sock" 2>/dev/null || echo 999)"
      # smoke.sh asks this socket for the engine's version
      printf 'export PODMAN_STACK_SOCK=%s\n' "$sock" ;;
    esac
    ;;
  tag)
    cfg=$(compose "$@" config)
    built=$(printf '%s\n' "$cfg" | awk '/^services:/ { s = 1; next } /^[^ ]/ { s = 0 } s && /^  [A-Za-z0-9_.-]+:$/ { n = $1 } s && /^    build:/ { print n }')
    printf '%s\n' "$cfg" | awk '/^services:/ { s = 1; next } /^[^ ]/ { s = 0 } s && /^  [A-Za-z0-9_.-]+:$/ { n = $1 } s && /^    image: / { print n, $2 }' |
    while read -r svc img; do
      if printf '%s\n' "$built" | grep -qx "$svc"; then echo "docker-engine: $img: built by make up"; continue; fi
      if docker image inspect "$img" >/dev/null 2>&1; then echo "docker-engine: $img: present"; continue; fi
      echo "docker-engine: $img: pulling"
      docker pull -q "$img"
    done
    ;;
  health-loop)
    # shellcheck disable=SC2086
    [ -z "${STACK_HEALTH_LOOP:-}" ] || exec $STACK_HEALTH_LOOP "$@"
    trap 'exit 0' TERM INT
    while :; do sleep 3600 & wait $!; done
    ;;
  down)
    args=() rest=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    [ "${1:-}" != -- ] || { shift; rest=("$@"); }
    compose "${args[@]}" down -v ${rest[@]+"${rest[@]}"}
    ;;
  stop) ;;
  *) echo "docker-engine.sh: unknown command $cmd" >&2; exit 2 ;;
esac
