# Shared by scripts/complete, scripts/describe, scripts/translate: the appliance's HTTP client.
# Env: AI_LOCAL_URL (default http://127.0.0.1:8080), AI_LOCAL_USER, AI_LOCAL_PASSWORD,
#      AI_LOCAL_TIMEOUT (seconds, default 120). Prints the JSON answer on stdout; on failure the
#      error on stderr and exit 1 (HTTP error), 2 (usage) or 3 (appliance unreachable).

ai_local_url=${AI_LOCAL_URL:-http://127.0.0.1:8080}
ai_local_url=${ai_local_url%/}

# JSON string literal of $1 (quotes, backslashes and control characters escaped).
json_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# POST $2 (JSON) to path $1.
ai_local_post() {
  command -v curl >/dev/null || { echo "error: curl is required" >&2; exit 2; }
  local auth=() out status body
  if [ -n "${AI_LOCAL_USER:-}" ]; then
    # from a here-string config, so the password never shows in the process list
    auth=(--config -)
  fi
  out=$(mktemp)
  trap 'rm -f "$out"' RETURN
  local cred="${AI_LOCAL_USER:-}:${AI_LOCAL_PASSWORD:-}"
  cred=${cred//\\/\\\\}
  cred=${cred//\"/\\\"}
  status=$(printf 'user = "%s"\n' "$cred" |
    curl -sS "${auth[@]}" -o "$out" -w '%{http_code}' --max-time "${AI_LOCAL_TIMEOUT:-120}" \
      -H 'Content-Type: application/json' --data-binary "$2" "$ai_local_url$1") || {
    echo "error: cannot reach the appliance at $ai_local_url (curl exit $?)" >&2
    exit 3
  }
  body=$(cat "$out")
  if [ "$status" -ge 200 ] && [ "$status" -lt 300 ]; then
    printf '%s\n' "$body"
    return 0
  fi
  echo "error: HTTP $status: $body" >&2
  exit 1
}
