#!/usr/bin/env bash
# One-time set-up of the Ubuntu server (RTX 3060): Docker Engine + Compose v2, host hardening (ufw,
# unattended security upgrades, SSH checks), the NVIDIA Container Toolkit, and a GPU check inside a
# container. Idempotent: re-run it after a driver or OS upgrade; a second run changes nothing that is
# already in place (no rule added twice, nothing reinstalled).
#   sudo scripts/setup-ubuntu.sh
# env: SSH_PORT (default: sshd's own, else 22); SETUP_ROOT (prefix for the files this script writes,
#      for tests; default none)
set -euo pipefail

say() { printf '\n== %s\n' "$*"; }
die() { echo "setup-ubuntu: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run it with sudo"
. /etc/os-release
[ "${ID:-}" = ubuntu ] || echo "setup-ubuntu: this is $PRETTY_NAME, written for Ubuntu - continuing anyway" >&2
export DEBIAN_FRONTEND=noninteractive
codename=${UBUNTU_CODENAME:-$VERSION_CODENAME}
arch=$(dpkg --print-architecture)

say "base packages"
apt-get update -qq
apt-get install -y -qq ca-certificates curl gnupg make git

say "Docker Engine + Compose plugin (download.docker.com)"
if ! docker compose version >/dev/null 2>&1; then
  install -m 0755 -d /etc/apt/keyrings
  curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
  chmod a+r /etc/apt/keyrings/docker.asc
  echo "deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu $codename stable" \
    > /etc/apt/sources.list.d/docker.list
  apt-get update -qq
  apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
fi
systemctl enable --now docker   # the stack comes back by itself after a reboot (restart: unless-stopped)
docker compose version
if [ -n "${SUDO_USER:-}" ] && ! id -nG "$SUDO_USER" | grep -qw docker; then
  usermod -aG docker "$SUDO_USER"
  echo "added $SUDO_USER to the docker group - log out and in again before \`make up\`"
fi

say "host hardening: firewall, security upgrades, SSH"
warn() { echo "setup-ubuntu: WARNING: $*" >&2; }
root_dir=${SETUP_ROOT:-}
installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }
for pkg in ufw unattended-upgrades; do
  installed "$pkg" || apt-get install -y -qq "$pkg"
done

# ufw: deny everything coming in but SSH, which is rate-limited (6 connections / 30 s per address).
# The appliance needs no open port: nginx is published on 127.0.0.1 and the tunnel dials out.
sshd_config=$(sshd -T 2>/dev/null || true)
ssh_port=${SSH_PORT:-$(printf '%s\n' "$sshd_config" | awk '$1 == "port" { print $2; exit }')}
ssh_port=${ssh_port:-22}
ufw_status=$(ufw status verbose 2>/dev/null || true)
if ! grep -q '^Status: active' <<<"$ufw_status"; then
  # rules can be set while ufw is off; SSH is allowed before the firewall goes up
  ufw default deny incoming
  ufw default allow outgoing
  ufw limit "$ssh_port/tcp" comment 'ssh, rate-limited'
  ufw --force enable
else
  grep -q 'Default: deny (incoming)' <<<"$ufw_status" || ufw default deny incoming
  grep -qE "^$ssh_port/tcp +LIMIT IN " <<<"$ufw_status" || ufw limit "$ssh_port/tcp" comment 'ssh, rate-limited'
fi
echo "ufw: active, incoming denied except $ssh_port/tcp (rate-limited)"

# Docker writes its own iptables rules for published ports, ahead of ufw's: a port published on
# 0.0.0.0 is reachable from the network WHATEVER ufw says. Every published port must be on 127.0.0.1
# (this stack: HTTP_BIND=127.0.0.1, see `make up`).
echo "note: ufw does not filter Docker's published ports - publish only on 127.0.0.1"
exposed=$(docker ps --format '{{.Names}}\t{{.Ports}}' 2>/dev/null | awk -F'\t' '$2 ~ /(^|[ ,])(0\.0\.0\.0|\[?::\]?):[0-9]/' || true)
if [ -n "$exposed" ]; then
  warn "these running containers publish ports on every interface, open to the network despite ufw:"
  printf '%s\n' "$exposed" | sed 's/^/    /' >&2
  warn "publish them on 127.0.0.1 (ports: \"127.0.0.1:HOST:CONTAINER\") or stop them"
fi

# unattended-upgrades: Ubuntu's 50unattended-upgrades installs from the -security pocket; this turns
# on the daily run
auto=$root_dir/etc/apt/apt.conf.d/20auto-upgrades
want='APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";'
if [ "$(cat "$auto" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$(dirname "$auto")"
  printf '%s\n' "$want" > "$auto"
  echo "unattended security upgrades: turned on ($auto)"
fi
systemctl is-enabled --quiet unattended-upgrades 2>/dev/null || systemctl enable --now unattended-upgrades

# SSH: the one open port. Passwords can be guessed; keys cannot.
if [ -z "$sshd_config" ]; then
  warn "could not read sshd's configuration (sshd -T): check by hand that password logins are off"
else
  for key in passwordauthentication kbdinteractiveauthentication; do
    if printf '%s\n' "$sshd_config" | grep -qx "$key yes"; then
      warn "sshd allows password logins ($key yes): put your key in ~/.ssh/authorized_keys, then set" \
           "'PasswordAuthentication no' and 'KbdInteractiveAuthentication no' in /etc/ssh/sshd_config.d/ and reload ssh"
    fi
  done
  if printf '%s\n' "$sshd_config" | grep -qx 'permitrootlogin yes'; then
    warn "sshd allows root logins with a password (PermitRootLogin yes)"
  fi
fi

say "NVIDIA driver"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
  echo "no working NVIDIA driver. Install one (ollama needs >= 550), reboot, re-run this script:"
  echo "    sudo ubuntu-drivers install && sudo reboot"
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader

say "NVIDIA Container Toolkit"
if ! command -v nvidia-ctk >/dev/null 2>&1; then
  curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey \
    | gpg --batch --yes --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
    | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' \
    > /etc/apt/sources.list.d/nvidia-container-toolkit.list
  apt-get update -qq
  apt-get install -y -qq nvidia-container-toolkit
fi
nvidia-ctk runtime configure --runtime=docker
systemctl restart docker

say "GPU inside a container"
if docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L; then
  echo "GPU visible in containers."
else
  die "the GPU is not visible inside containers - see README, troubleshooting 'GPU not used'"
fi

say "done - next: make up   (as your user, from the repo)"
