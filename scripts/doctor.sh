#!/usr/bin/env bash
# `make doctor`: is this machine ready to run (and keep running) the stack? One line per check:
#
#   ok    engine      Docker 27.5.1 answers (unix:///var/run/docker.sock)
#   warn  compose     docker-compose 1.29.2 (Compose v1) ... -> fix: sudo apt-get install docker-compose-plugin
#   FAIL  env         .env is mode 644 ... -> fix: chmod 600 .env
#
# Every warn/FAIL line ends with the command (or the README/docs row) that fixes it. Exit 1 when a
# check FAILs, else 0 (warnings do not fail).
#
#   scripts/doctor.sh [--quick] [server|dev|dev-cpu]
#   --quick  the subset `make up` / `make dev` run before compose (engine, compose, .env, HTTP_PORT;
#            Ollama.app for dev): only what would make compose fail anyway FAILs, the rest warns, so
#            a setup that works today is never stopped.
#   MODE     default: dev on macOS, else the mode of the last `make up` (.stack-mode), else server.
# Env: like scripts/compose.sh (environment first, then .env; STACK_ENV_FILE, COMPOSE_BIN, DOCKER_HOST).
#      DOCTOR_TIMEOUT  seconds each engine call may take (default 20; `docker version` gets a second try
#                      with 3x that before the engine counts as not answering).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0
[ "${1:-}" = --quick ] && { quick=1; shift; }
os=$(uname -s 2>/dev/null || echo unknown)
mode=${1:-}
if [ -z "$mode" ]; then
  if [ "$os" = Darwin ]; then mode=dev; else mode=$(cat .stack-mode 2>/dev/null || echo server); fi
fi
case $mode in server|dev|dev-cpu) ;; *) echo "doctor: unknown mode '$mode' (server, dev, dev-cpu)" >&2; exit 2 ;; esac

# shellcheck source=scripts/env.sh
. "$root/scripts/env.sh"

fails=0 warns=0
line() { # line LEVEL CHECK TEXT [FIX]
  local text=$3
  [ -z "${4:-}" ] || text="$text -> fix: $4"
  printf '%-4s  %-9s %s\n' "$1" "$2" "$text"
}
ok() { line ok "$@"; }
warn() { warns=$((warns + 1)); line warn "$@"; }
fail() { fails=$((fails + 1)); line FAIL "$@"; }
# in --quick mode an advisory check only warns
advise() { if [ "$quick" = 1 ]; then warn "$@"; else fail "$@"; fi; }

tmo=${DOCTOR_TIMEOUT:-20}
with_timeout() { if command -v timeout >/dev/null 2>&1; then timeout "$tmo" "$@"; else "$@"; fi; }
have() { command -v "$1" >/dev/null 2>&1; }

project=$(env_get COMPOSE_PROJECT_NAME); project=${project:-ai-local-core}
port=$(env_get HTTP_PORT); port=${port:-8080}
gpu=$(env_get GPU); tunnel=$(env_get TUNNEL)

# ---- the Docker engine --------------------------------------------------------------------------
engine=0 engine_err="" engine_ver=""
endpoint=${DOCKER_HOST:-unix:///var/run/docker.sock}
if have docker; then
  # a busy engine can be slow to answer: one more try with 3x the time before calling it dead
  for t in "$tmo" $((tmo * 3)); do
    rc=0
    engine_ver=$(tmo=$t with_timeout docker version --format '{{.Server.Version}}' 2>"${TMPDIR:-/tmp}/doctor.$$.err") || rc=$?
    if [ "$rc" = 0 ] && [ -n "$engine_ver" ]; then engine=1; break; fi
    engine_err=$(tr '\n' ' ' <"${TMPDIR:-/tmp}/doctor.$$.err" | sed 's/ *$//' | cut -c1-300)
    [ "$rc" = 124 ] || [ "$rc" = 137 ] || break
    engine_err="no answer within $t s"
  done
  rm -f "${TMPDIR:-/tmp}/doctor.$$.err"
elif have curl; then
  # no docker CLI (compose alone can still work): ask the engine's /version (DOCKER_HOST: podman's Docker API)
  case $endpoint in
    unix://*) engine_ver=$(curl -fsS -m "$tmo" --unix-socket "${endpoint#unix://}" http://d/version 2>&1) ;;
    tcp://*) engine_ver=$(curl -fsS -m "$tmo" "http://${endpoint#tcp://}/version" 2>&1) ;;
    *) engine_ver="" ;;
  esac
  if printf '%s' "$engine_ver" | grep -q '"Version"'; then
    engine=1; engine_ver=$(printf '%s' "$engine_ver" | sed -n 's/.*"Version":"\([^"]*\)".*/\1/p' | head -n 1)
  else
    engine_err=${engine_ver:-no answer}; engine_ver=""
    [ -n "${DOCKER_HOST:-}" ] || [ -S "${endpoint#unix://}" ] || engine_err="docker: command not found"
  fi
else
  engine_err="docker: command not found"
fi

in_group=0
if [ "$(id -u)" = 0 ] || id -nG 2>/dev/null | tr ' ' '\n' | grep -qx docker; then in_group=1; fi

if [ "$engine" = 1 ]; then
  ok engine "engine ${engine_ver} answers ($endpoint)"
elif [ "$engine_err" = "docker: command not found" ]; then
  if [ "$os" = Darwin ]; then fail engine "no docker CLI" "install Docker Desktop (scripts/setup-macos.sh)"
  else fail engine "no docker CLI" "sudo scripts/setup-ubuntu.sh (Docker Engine + Compose v2)"; fi
elif printf '%s' "$engine_err" | grep -qi 'permission denied'; then
  fail engine "no permission on $endpoint ($engine_err)" "sudo usermod -aG docker \$USER, then log out and in again"
elif [ -n "${DOCKER_HOST:-}" ]; then
  fail engine "nothing answers at DOCKER_HOST=$DOCKER_HOST ($engine_err)" "start that engine, or \`unset DOCKER_HOST\` to use the local Docker"
elif [ "$os" = Darwin ]; then
  fail engine "Docker Desktop does not answer ($engine_err)" "open -a Docker (wait for the whale icon to settle)"
else
  fail engine "the Docker engine does not answer ($engine_err)" "sudo systemctl enable --now docker"
fi

if [ "$in_group" = 1 ]; then
  ok group "$([ "$(id -u)" = 0 ] && echo "running as root" || echo "user $(id -un 2>/dev/null) is in the docker group")"
elif [ "$engine" = 1 ]; then
  ok group "user $(id -un 2>/dev/null) is not in the docker group, but the engine answers (${DOCKER_HOST:-Docker Desktop / rootless})"
elif [ "$os" != Darwin ]; then
  warn group "user $(id -un 2>/dev/null) is not in the docker group" "sudo usermod -aG docker \$USER, then log out and in again"
fi

dk() { have docker && with_timeout docker "$@"; }   # engine calls, bounded
api_get() { # GET on the engine API with curl, for a machine with an engine but no docker CLI
  have docker && return 1
  case $endpoint in
    unix://*) curl -fsS -m "$tmo" --unix-socket "${endpoint#unix://}" "http://d$1" 2>/dev/null ;;
    tcp://*) curl -fsS -m "$tmo" "http://${endpoint#tcp://}$1" 2>/dev/null ;;
    *) return 1 ;;
  esac
}
# the containers of this stack (running), by compose labels
stack_cid() { [ "$engine" = 1 ] && dk ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$1" 2>/dev/null | head -n 1; }
stack_running=0
if [ "$engine" = 1 ] && have docker && [ -n "$(dk ps -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)" ]; then stack_running=1; fi

# ---- compose ------------------------------------------------------------------------------------
cver="" cbin=""
if [ -n "${COMPOSE_BIN:-}" ]; then
  read -r -a cb <<<"$COMPOSE_BIN"; cbin=$COMPOSE_BIN
  cver=$("${cb[@]}" version --short 2>/dev/null | head -n 1)
elif have docker && cver=$(docker compose version --short 2>/dev/null) && [ -n "$cver" ]; then
  cbin="docker compose"
elif have docker-compose; then
  cbin=docker-compose; cver=$(docker-compose version --short 2>/dev/null | head -n 1)
fi
cver=${cver#v}
if [ -z "$cbin" ] || [ -z "$cver" ]; then
  if [ "$os" = Darwin ]; then fail compose "neither \`docker compose\` nor \`docker-compose\` found" "install Docker Desktop (it ships Compose v2)"
  else fail compose "neither \`docker compose\` nor \`docker-compose\` found" "sudo apt-get install docker-compose-plugin (scripts/setup-ubuntu.sh)"; fi
elif [ "${cver%%.*}" -lt 2 ] 2>/dev/null; then
  warn compose "$cbin $cver (Compose v1, no longer maintained; works with this repo)" "sudo apt-get install docker-compose-plugin (Compose v2, scripts/setup-ubuntu.sh)"
else
  ok compose "$cbin $cver"
fi

# ---- .env -----------------------------------------------------------------------------------------
if [ ! -f "$env_file" ]; then
  fail env "$env_file missing" "make init"
else
  perm=$(stat -c %a "$env_file" 2>/dev/null || stat -f %Lp "$env_file" 2>/dev/null)
  users=$(env_get AUTH_USERS)
  if [ -z "$users" ]; then
    fail env "AUTH_USERS is empty in $env_file (nothing is served without users)" "make init (new .env) or add user:password entries to AUTH_USERS"
  else
    weak="" n=0
    IFS=',' read -r -a entries <<<"$users"
    for e in "${entries[@]}"; do
      e=${e# }; n=$((n + 1))
      u=${e%%:*}; p=${e#*:}
      [ "$p" != "$e" ] && [ ${#p} -ge 16 ] || weak="$weak ${u:-?}"
    done
    if [ -n "$weak" ]; then
      advise env "weak password (under 16 characters, or none) for:$weak" "set 16+ random characters [A-Za-z0-9] for them in AUTH_USERS (\`head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9\`)"
    else
      ok env "$n user(s) in AUTH_USERS, passwords 16+ characters"
    fi
    for a in $(env_get ADMIN_USERS | tr ',' ' '); do
      printf '%s\n' "${entries[@]}" | sed 's/^ //' | grep -q "^$a:" || warn env "ADMIN_USERS names '$a', who is not in AUTH_USERS" "add $a to AUTH_USERS or remove it from ADMIN_USERS"
    done
  fi
  if [ "$perm" != 600 ]; then
    advise env "$env_file is mode ${perm:-?} (it holds the passwords)" "chmod 600 $env_file"
  else
    ok env "$env_file mode 600"
  fi
fi

# ---- HTTP_PORT ------------------------------------------------------------------------------------
listening=""
if have ss; then
  listening=$(ss -Htln "( sport = :$port )" 2>/dev/null)
elif have lsof; then
  listening=$(lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | tail -n +2)
elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  listening="127.0.0.1:$port"
fi
if [ -z "$listening" ]; then
  ok port "HTTP_PORT $port is free"
elif [ "$engine" = 1 ] && { dk ps --filter "label=com.docker.compose.project=$project" --format '{{.Ports}}' 2>/dev/null | grep -q ":$port->" ||
     api_get "/containers/json?filters=%7B%22label%22%3A%5B%22com.docker.compose.project%3D$project%22%5D%7D" | grep -q "\"PublicPort\": *$port[,}]"; }; then
  ok port "HTTP_PORT $port is held by this stack (project $project)"
elif [ "$engine" != 1 ]; then
  warn port "HTTP_PORT $port is in use; by this stack? cannot tell without the engine" "fix the engine line above, then make doctor"
else
  who=$(printf '%s\n' "$listening" | head -n 1 | tr -s ' ' | cut -c1-120)
  fail port "HTTP_PORT $port is taken by another program ($who)" "set HTTP_PORT to a free port in .env, or stop that program (\`sudo ss -tlnp 'sport = :$port'\` names it)"
fi

# ---- macOS: the native Ollama.app (make dev) -----------------------------------------------------
if [ "$os" = Darwin ] && [ "$mode" = dev ]; then
  running=0
  have pgrep && pgrep -x Ollama >/dev/null 2>&1 && running=1
  over=$(curl -fsS -m 3 http://127.0.0.1:11434/api/version 2>/dev/null | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')
  if [ -n "$over" ]; then
    ok ollama "Ollama.app ${over} answers on 127.0.0.1:11434$([ "$running" = 1 ] || echo ' (not as Ollama.app: a CLI server?)')"
  elif [ "$running" = 1 ]; then
    fail ollama "Ollama.app runs but 127.0.0.1:11434 does not answer" "quit Ollama from the menu bar and \`open -a Ollama\`"
  else
    fail ollama "Ollama.app is not running" "open -a Ollama (install: scripts/setup-macos.sh)"
  fi
fi

if [ "$quick" = 1 ]; then
  [ "$fails" = 0 ] || echo "doctor: $fails check(s) FAILED - fix them first (\`make doctor\` runs every check)"
  [ "$fails" = 0 ]; exit
fi

# ---- NVIDIA (server with GPU) ----------------------------------------------------------------------
if [ "$mode" = server ] && [ "$gpu" != 0 ] && [ "$os" != Darwin ]; then
  if ! have nvidia-smi; then
    fail gpu "no nvidia-smi: no NVIDIA driver" "sudo ubuntu-drivers install && sudo reboot (driver >= 550), or GPU=0 in .env for CPU only"
  elif ! ginfo=$(with_timeout nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1) || [ -z "$ginfo" ]; then
    fail gpu "nvidia-smi fails: $(printf '%s' "$ginfo" | head -n 1 | cut -c1-120)" "sudo ubuntu-drivers install && sudo reboot"
  else
    ok gpu "driver: $(printf '%s' "$ginfo" | head -n 1)"
  fi
  runtimes=""
  [ "$engine" = 1 ] && runtimes=$(dk info --format '{{json .Runtimes}}' 2>/dev/null)
  if have nvidia-ctk || printf '%s' "$runtimes" | grep -q nvidia; then
    tk=$(nvidia-ctk --version 2>/dev/null | head -n 1)
    if printf '%s' "$runtimes" | grep -q nvidia || [ "$engine" != 1 ]; then
      ok toolkit "NVIDIA Container Toolkit${tk:+ ($tk)}$(printf '%s' "$runtimes" | grep -q nvidia && echo ', runtime nvidia registered with the engine')"
    else
      fail toolkit "nvidia-ctk installed but the engine has no nvidia runtime" "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"
    fi
  else
    fail toolkit "NVIDIA Container Toolkit missing (no nvidia-ctk, no nvidia runtime)" "sudo scripts/setup-ubuntu.sh (installs and configures it)"
  fi
  if [ "$engine" = 1 ]; then
    img=$(sed -n 's/^[[:space:]]*image:[[:space:]]*\(ollama\/ollama:[^[:space:]]*\).*/\1/p' docker-compose.yml | head -n 1)
    if [ -n "$(dk images -q "$img" 2>/dev/null)" ]; then
      if gl=$(tmo=90 with_timeout docker run --rm --gpus all --entrypoint nvidia-smi "$img" -L 2>&1) && printf '%s' "$gl" | grep -q '^GPU '; then
        ok gpu "visible inside a container: $(printf '%s' "$gl" | grep '^GPU ' | head -n 1 | cut -c1-80)"
      else
        fail gpu "no GPU inside a container ($(printf '%s' "$gl" | tail -n 1 | cut -c1-120))" "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker (README: Troubleshooting, \"GPU not used\")"
      fi
    else
      warn gpu "inside a container: not checked ($img not pulled yet)" "docker pull $img, then make doctor again"
    fi
  fi
elif [ "$mode" = server ] && [ "$gpu" = 0 ]; then
  ok gpu "GPU=0: CPU only, NVIDIA checks skipped"
fi

# ---- disk for the models on Docker's data root --------------------------------------------------
# download sizes (MB) of models this repo names; others are reported as unknown
known_size() {
  case $1 in
    llama3.1:8b|llama3.1) echo 4900 ;;  mistral:7b|mistral) echo 4400 ;;  llava:7b|llava) echo 4700 ;;
    nomic-embed-text*) echo 274 ;;      llama3.2:3b|llama3.2) echo 2000 ;; llama3.2:1b) echo 1300 ;;
    phi3:mini|phi3) echo 2200 ;;        moondream*) echo 1700 ;;          qwen2.5:0.5b) echo 398 ;;
    qwen2.5:1.5b) echo 986 ;;           qwen2.5:7b|qwen2.5) echo 4700 ;;  all-minilm*) echo 46 ;;
    mxbai-embed-large*) echo 670 ;;     gemma2:2b) echo 1600 ;;           qwen2.5-coder:7b) echo 4700 ;;
    *) return 1 ;;
  esac
}
# MODELS / DEV_MODELS, else the default the compose files give them
case $mode in server) mvar=MODELS; mfile=docker-compose.yml ;; *) mvar=DEV_MODELS; mfile=compose/dev-cpu.yml ;; esac
models=$(env_get $mvar)
[ -n "$models" ] || models=$(sed -n "s/.*\\\${$mvar:-\([^}]*\)}.*/\1/p" "$mfile" 2>/dev/null | head -n 1)
models=$(printf '%s' "$models" | tr ',' ' ')
present=""
if [ "$mode" = dev ]; then
  have ollama && present=$(with_timeout ollama list 2>/dev/null | awk 'NR > 1 { print $1 }')
elif oc=$(stack_cid ollama) && [ -n "$oc" ]; then
  present=$(dk exec "$oc" ollama list 2>/dev/null | awk 'NR > 1 { print $1 }')
fi
is_present() { local m=$1; case $m in *:*) ;; *) m=$m:latest ;; esac; printf '%s\n' "$present" | grep -qxF "$m"; }
need=0 unknown="" missing=""
for m in $models; do
  is_present "$m" && continue
  missing="$missing $m"
  if s=$(known_size "$m"); then need=$((need + s)); else unknown="$unknown $m"; fi
done
need=$((need + 3000))   # images (ollama, api, nginx, ...) and headroom
if [ "$mode" = dev ]; then droot=$HOME; dwhat="home (~/.ollama)"
else
  droot=""; [ "$engine" = 1 ] && droot=$(dk info --format '{{.DockerRootDir}}' 2>/dev/null)
  dwhat="Docker's data root"
fi
if [ -z "$droot" ]; then
  warn disk "Docker's data root unknown (engine not answering): free space not checked" "fix the engine line above, then make doctor"
elif [ ! -d "$droot" ]; then
  warn disk "$dwhat $droot is not on this machine (a VM or remote engine): free space not checked" "check the engine's own disk (Docker Desktop: Settings > Resources)"
else
  free_mb=$(df -Pk "$droot" 2>/dev/null | awk 'NR == 2 { printf "%d", $4 / 1024 }')
  need_txt="${need} MB for${missing:- no missing models}$([ -n "$unknown" ] && echo " (size unknown:$unknown)") + images"
  if [ -z "$free_mb" ]; then
    warn disk "cannot read free space of $droot" "df -h $droot"
  elif [ "$free_mb" -lt "$need" ]; then
    fail disk "$free_mb MB free on $droot ($dwhat), need about $need_txt" "free space on that disk (\`docker system prune\` removes unused images), or fewer models in MODELS"
  elif [ -n "$unknown" ]; then
    warn disk "$free_mb MB free on $droot; need about $need_txt" "check the sizes on https://ollama.com/library"
  else
    ok disk "$free_mb MB free on $droot ($dwhat), need about $need_txt"
  fi
fi

# ---- RAM ---------------------------------------------------------------------------------------------
ram_mb=""
if [ "$os" = Darwin ]; then ram_mb=$(( $(sysctl -n hw.memsize 2>/dev/null || echo 0) / 1048576 ))
elif have free; then ram_mb=$(free -m 2>/dev/null | awk '/^Mem:/ { print $2 }')
fi
if [ -z "$ram_mb" ] || [ "$ram_mb" = 0 ]; then
  warn ram "cannot read the memory size" "free -m"
elif [ "$ram_mb" -lt 4000 ]; then
  fail ram "$ram_mb MB of RAM: too little for any model plus the stack" "a machine with 8 GB or more (16 GB for the server defaults)"
elif [ "$mode" = server ] && [ "$ram_mb" -lt 15000 ]; then
  lim=$(env_get OLLAMA_MEM_LIMIT)
  warn ram "$ram_mb MB of RAM; the server defaults assume 16 GB (OLLAMA_MEM_LIMIT=${lim:-10g})" "lower OLLAMA_MEM_LIMIT in .env (e.g. 6g), or smaller models"
else
  ok ram "$ram_mb MB"
fi

# ---- clock --------------------------------------------------------------------------------------
if [ "$os" = Darwin ]; then
  ok clock "macOS keeps time itself (System Settings > General > Date & Time)"
elif have timedatectl && sync=$(timedatectl show -p NTPSynchronized --value 2>/dev/null) && [ -n "$sync" ]; then
  if [ "$sync" = yes ]; then ok clock "synchronized (NTP)"
  else warn clock "not synchronized (TLS to Cloudflare/Tailscale fails when the clock is far off)" "sudo timedatectl set-ntp true"; fi
else
  warn clock "cannot tell (no timedatectl / no systemd)" "compare \`date -u\` with a reference clock; with systemd: sudo apt-get install systemd-timesyncd && sudo timedatectl set-ntp true"
fi

# ---- tunnel / tailscale, models: only when the stack runs -----------------------------------------
if [ "$mode" = server ] && [ "$tunnel" != 0 ]; then
  case $tunnel in tailscale) svc=tailscale ;; *) svc=cloudflared ;; esac
  if [ "$stack_running" != 1 ]; then
    ok tunnel "$svc: stack not running, not checked"
  elif tc=$(stack_cid "$svc") && [ -n "$tc" ]; then
    h=$(dk inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$tc" 2>/dev/null)
    extra=""
    if [ "$svc" = tailscale ]; then
      st=$(dk exec "$tc" tailscale status --json 2>/dev/null)
      bs=$(printf '%s' "$st" | sed -n 's/.*"BackendState": *"\([^"]*\)".*/\1/p' | head -n 1)
      dn=$(printf '%s' "$st" | tr -d '\n' | sed -n 's/.*"Self": *{[^}]*"DNSName": *"\([^"]*\)".*/\1/p' | head -n 1)
      extra=", ${bs:-state unknown}${dn:+, https://${dn%.}}"
      [ "$bs" = Running ] || h="$h/${bs:-?}"
    fi
    if [ "$h" = healthy ] || [ "$h" = running ]; then ok tunnel "$svc $h$extra"
    elif [ "$svc" = tailscale ]; then fail tunnel "tailscale is $h$extra" "check TS_AUTHKEY in .env (a new key: https://login.tailscale.com/admin/settings/keys), then make up; \`make logs\`"
    else fail tunnel "cloudflared is $h" "check TUNNEL_TOKEN in .env, then make up; \`make logs\` (README: Troubleshooting)"; fi
  else
    fail tunnel "$svc is not running although TUNNEL=${tunnel:-1}" "make up (then \`make ps\`, \`make logs\`)"
  fi
fi

if [ "$mode" = dev ] && [ -z "$present" ] && ! have ollama; then
  warn models "no \`ollama\` CLI: models not checked" "scripts/setup-macos.sh"
elif [ "$mode" != dev ] && [ "$stack_running" != 1 ]; then
  ok models "stack not running, not checked (make up pulls MODELS)"
elif [ -n "$missing" ]; then
  warn models "not present:$missing" "make up (the model-puller pulls them), or make pull MODEL=name"
else
  ok models "all present: $models"
fi

echo "doctor: $fails FAIL, $warns warn"
[ "$fails" = 0 ]
