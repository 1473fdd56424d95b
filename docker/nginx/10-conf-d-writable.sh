#!/bin/sh
# nginx entrypoint step (official image: /docker-entrypoint.d/10-conf-d-writable.sh), before the
# templates are rendered (20-envsubst-on-templates.sh) into /etc/nginx/conf.d.
# The root filesystem is read-only and conf.d a tmpfs (docker-compose.yml). Podman copies the image's
# files into a tmpfs (Docker does not), so the image's default.conf may be there, and read-only: the
# entrypoint runs as root WITHOUT CAP_DAC_OVERRIDE (cap_drop ALL), which cannot overwrite a file it
# may not write, but may remove it (the directory is root's). Our template renders its own default.conf.
set -eu
dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
if [ -f "$dir/default.conf" ]; then
  rm -f "$dir/default.conf"
  echo "10-conf-d-writable: removed the image's $dir/default.conf (the template renders ours)"
fi
