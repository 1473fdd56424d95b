#!/usr/bin/env bash
# One-time set-up of the Ubuntu server (RTX 3060): Docker Engine + Compose v2, the NVIDIA Container
# Toolkit, and a GPU check inside a container. Idempotent: re-run it after a driver or OS upgrade.
#   sudo scripts/setup-ubuntu.sh
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
