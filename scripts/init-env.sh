#!/usr/bin/env bash
# `make init`: create .env from .env.example with generated passwords, shown once on screen.
# Idempotent: an existing .env is never touched.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -f .env ]; then
  echo "init: .env already exists - left as it is (delete it to generate new passwords)."
  exit 0
fi

gen() { # 24 characters [A-Za-z0-9] from /dev/urandom (tr/head/cut exist on Linux and macOS)
  local s=""
  while [ ${#s} -lt 24 ]; do
    s=$s$(head -c 256 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9')
  done
  printf '%s' "$s" | cut -c1-24
}
admin_pw=$(gen)
waldus_pw=$(gen)

umask 077
tmp=.env.tmp.$$
awk -v users="admin:$admin_pw,waldus:$waldus_pw" '
  /^AUTH_USERS=/  { print "AUTH_USERS=" users; next }
  /^ADMIN_USERS=/ { print "ADMIN_USERS=admin"; next }
  { print }' .env.example > "$tmp"
mv "$tmp" .env

cat <<MSG
init: created .env (mode 600) from .env.example with two users - note the passwords now,
      they are shown only this once (they stay in .env):

    admin   $admin_pw   (admin: may use /admin/...)
    waldus  $waldus_pw   (for the Waldus backend)

      Change models, ports, the tunnel token ... in .env, then \`make up\`.
MSG
