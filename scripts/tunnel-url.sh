#!/usr/bin/env bash
# `make tunnel-url`: the public URL of the quick tunnel, scraped from cloudflared's log
# (a named tunnel's URL is the public hostname configured for it in Cloudflare).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
token=$(sed -n 's/^[[:space:]]*TUNNEL_TOKEN[[:space:]]*=//p' "${STACK_ENV_FILE:-.env}" 2>/dev/null | tail -n 1)
if [ -n "${TUNNEL_TOKEN:-$token}" ]; then
  echo "named tunnel: its URL is the public hostname you set for it in Cloudflare Zero Trust (Networks > Tunnels)."
  exit 0
fi
for _ in $(seq 30); do
  url=$(scripts/compose.sh server logs --no-color cloudflared 2>&1 | grep -o 'https://[a-z0-9-]*\.trycloudflare\.com' | tail -n 1 || true)
  if [ -n "$url" ]; then echo "$url"; exit 0; fi
  sleep 1
done
echo "tunnel-url: no trycloudflare.com URL in the cloudflared log - is the tunnel on (TUNNEL=1, \`make ps\`)?" >&2
exit 1
