#!/bin/sh
# Renders the monitoring configuration from the environment (the owner's .env, passed by
# compose/monitoring.yml), then starts the server. It is the entrypoint of both containers:
#
#   render.sh prometheus   OUTDIR [-- /bin/prometheus FLAGS...]
#   render.sh alertmanager OUTDIR [-- /bin/alertmanager FLAGS...]
#
# Without `--` it only renders (tests/monitoring.test.js does that, then runs promtool / amtool on
# OUTDIR). Why a renderer: Prometheus and Alertmanager read no environment variables, and secrets
# (the scrape password, bot token, SMTP password) must not be in the repo. They go to OUTDIR, a
# tmpfs in the container (mode 600), never to a volume.
#
# Plain POSIX sh with sed/awk/tr only: it runs under the official images' busybox sh, under the
# podman-stack stand-ins' dash, and on the host for the tests.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
what=${1:?usage: render.sh prometheus|alertmanager OUTDIR [-- COMMAND...]}
out=${2:?usage: render.sh prometheus|alertmanager OUTDIR [-- COMMAND...]}
shift 2
if [ "${1:-}" = -- ]; then shift; fi

say() { echo "render($what): $*" >&2; }
die() { say "ERROR: $*"; exit 1; }
umask 077
mkdir -p "$out"

# a YAML double-quoted scalar (backslash and quote escaped); values never hold newlines (.env lines)
q() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# a non-negative decimal number, or die naming the setting
num() {
  case $2 in
    '' | . | *[!0-9.]* | *.*.*) die "$1 must be a number (got '$2')" ;;
  esac
  printf '%s' "$2"
}
# a Prometheus duration such as 30s, 5m, 1h
dur() {
  printf '%s' "$2" | grep -Eq '^[0-9]+(ms|s|m|h|d)$' || die "$1 must be a duration like 30s or 5m (got '$2')"
  printf '%s' "$2"
}
# percent-encode stdin for a URL query value (bytewise; the templates are ASCII)
urlenc() {
  LC_ALL=C awk 'BEGIN { for (i = 1; i < 256; i++) ord[sprintf("%c", i)] = i; ORS = "" }
    { if (NR > 1) printf "%%0A"
      for (i = 1; i <= length($0); i++) { c = substr($0, i, 1)
        if (c ~ /[A-Za-z0-9_.~-]/) printf "%s", c; else printf "%%%02X", ord[c] } }'
}

render_prometheus() {
  # --- the API scrape credentials: a user of AUTH_USERS that may read /metrics
  user=${METRICS_SCRAPE_USER:-}
  [ -n "$user" ] || user=$(printf '%s' "${METRICS_USERS:-}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | sed -n '/./{p;q;}')
  [ -n "$user" ] || user=$(printf '%s' "${ADMIN_USERS:-}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | sed -n '/./{p;q;}')
  password=""
  if [ -n "$user" ]; then
    printf '%s' "$user" | grep -Eq '^[A-Za-z0-9._-]+$' || die "METRICS_SCRAPE_USER '$user': letters, digits, . _ - only"
    # AUTH_USERS is user:password,... (the api trims each entry); the password may contain ':'
    password=$(printf '%s' "${AUTH_USERS:-}" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | sed -n "s/^$user:\(.*\)\$/\1/p" | sed -n 1p)
  fi
  if [ -z "$password" ]; then
    # keep Prometheus running (GPU, tunnel and its own alerts still work); ApiScrapeFailing tells the owner
    say "WARNING: no password for scrape user '${user:-<none>}' in AUTH_USERS - the api target will fail with 401/403."
    say "         Set METRICS_SCRAPE_USER to a user of AUTH_USERS that is in METRICS_USERS or ADMIN_USERS."
    user=${user:-nobody}
  fi
  printf '%s' "$password" > "$out/api-scrape-password"

  # --- optional targets (file_sd: an empty list when the service is not part of the stack)
  mkdir -p "$out/targets"
  if [ "${MONITORING_GPU:-1}" != 0 ]; then echo '[{"targets": ["gpu-exporter:9835"]}]'; else echo '[]'; fi > "$out/targets/gpu.json"
  if [ "${MONITORING_TUNNEL:-1}" != 0 ]; then echo '[{"targets": ["cloudflared:2000"]}]'; else echo '[]'; fi > "$out/targets/cloudflared.json"

  # --- configured bounds as recording rules (rules cannot read the environment)
  ttft=$(num ALERT_TTFT_P95_MAX_S "${ALERT_TTFT_P95_MAX_S:-10}")
  disk=$(num ALERT_MODELS_DISK_FREE_MIN_GB "${ALERT_MODELS_DISK_FREE_MIN_GB:-20}")
  watts=$(num SYSTEM_BASE_WATTS "${SYSTEM_BASE_WATTS:-60}")
  price=$(num ENERGY_PRICE_PLN_PER_KWH "${ENERGY_PRICE_PLN_PER_KWH:-1.10}")
  cat > "$out/config-rules.yml" <<EOF
# rendered by render.sh from the environment at start; do not edit (edit .env, then \`make up\`)
groups:
  - name: alc-config
    rules:
      - record: alc_config_ttft_p95_max_seconds
        expr: vector($ttft)
      - record: alc_config_models_disk_free_min_bytes
        expr: vector($disk * 1e9)
      - record: alc_config_system_base_watts
        expr: vector($watts)
      - record: alc_config_energy_price_pln_per_kwh
        expr: vector($price)
EOF

  scrape=$(dur PROMETHEUS_SCRAPE_INTERVAL "${PROMETHEUS_SCRAPE_INTERVAL:-15s}")
  eval=$(dur PROMETHEUS_EVAL_INTERVAL "${PROMETHEUS_EVAL_INTERVAL:-15s}")
  sed -e "s|@OUT@|$out|g" -e "s|@RULES@|${MONITORING_RULES_DIR:-$here/rules}|g" \
      -e "s|@SCRAPE_INTERVAL@|$scrape|g" -e "s|@EVAL_INTERVAL@|$eval|g" \
      -e "s|@SCRAPE_USER@|$user|g" "$here/prometheus.yml" > "$out/prometheus.yml"
  chmod 644 "$out/prometheus.yml" "$out/config-rules.yml" "$out/targets/gpu.json" "$out/targets/cloudflared.json"
  say "rendered $out/prometheus.yml (api scraped as '$user'; gpu: $( [ "${MONITORING_GPU:-1}" != 0 ] && echo on || echo off ), tunnel: $( [ "${MONITORING_TUNNEL:-1}" != 0 ] && echo on || echo off ))"
}

render_alertmanager() {
  f=$out/alertmanager.yml
  receivers=""
  gw=$(dur ALERT_GROUP_WAIT "${ALERT_GROUP_WAIT:-30s}")
  gi=$(dur ALERT_GROUP_INTERVAL "${ALERT_GROUP_INTERVAL:-5m}")
  ri=$(dur ALERT_REPEAT_INTERVAL "${ALERT_REPEAT_INTERVAL:-6h}")
  {
    echo "# rendered by render.sh from the environment at start; do not edit (edit .env, then \`make up\`)"
    echo "# Kept within what Alertmanager 0.25 (Debian, amtool check-config) accepts: no *_file fields"
    echo "# for the Telegram token or the webhook URL (0.26+/0.31+), parse_mode always explicit (the"
    echo "# default is MarkdownV2 in 0.25 and HTML from 0.26)."
    echo "templates:"
    echo "  - $(q "$here/alertmanager.tmpl")"
    echo "route:"
    echo "  receiver: owner"
    echo "  group_by: [alertname]"
    echo "  group_wait: $gw"
    echo "  group_interval: $gi"
    echo "  repeat_interval: $ri"
    echo "inhibit_rules:"
    echo "  # while Ollama is down, slow first tokens, errors and missing models are its consequences"
    echo "  - source_matchers: ['alertname=\"OllamaUnreachable\"']"
    echo "    target_matchers: ['alertname=~\"HighErrorRate|SlowFirstToken|ModelMissing|QueueFull\"']"
    echo "  # the api target down: every alert on its series is blind anyway"
    echo "  - source_matchers: ['alertname=\"ApiScrapeFailing\"']"
    echo "    target_matchers: ['alertname=~\"OllamaUnreachable|ModelMissing|ModelsDiskLow\"']"
    echo "receivers:"
    echo "  - name: owner"

    # --- Telegram: bot token + chat id
    if [ -n "${ALERT_TELEGRAM_BOT_TOKEN:-}" ] || [ -n "${ALERT_TELEGRAM_CHAT_ID:-}" ]; then
      [ -n "${ALERT_TELEGRAM_BOT_TOKEN:-}" ] || die "ALERT_TELEGRAM_CHAT_ID is set but ALERT_TELEGRAM_BOT_TOKEN is empty"
      printf '%s' "${ALERT_TELEGRAM_CHAT_ID:-}" | grep -Eq '^-?[0-9]+$' \
        || die "ALERT_TELEGRAM_CHAT_ID must be the numeric chat id (e.g. 123456789, groups -100...), got '${ALERT_TELEGRAM_CHAT_ID:-}'"
      echo "    telegram_configs:"
      echo "      - bot_token: $(q "$ALERT_TELEGRAM_BOT_TOKEN")"
      echo "        chat_id: $ALERT_TELEGRAM_CHAT_ID"
      [ -z "${ALERT_TELEGRAM_API_URL:-}" ] || echo "        api_url: $(q "$ALERT_TELEGRAM_API_URL")"
      echo "        parse_mode: HTML"
      echo "        message: '{{ template \"alc.telegram\" . }}'"
      echo "        send_resolved: true"
      receivers="$receivers telegram"
    fi

    # --- e-mail over SMTP
    if [ -n "${ALERT_EMAIL_TO:-}" ]; then
      [ -n "${ALERT_SMTP_SMARTHOST:-}" ] || die "ALERT_EMAIL_TO is set but ALERT_SMTP_SMARTHOST (host:port) is empty"
      printf '%s' "$ALERT_SMTP_SMARTHOST" | grep -Eq '^[^:]+:[0-9]+$' || die "ALERT_SMTP_SMARTHOST must be host:port (got '$ALERT_SMTP_SMARTHOST')"
      from=${ALERT_EMAIL_FROM:-${ALERT_SMTP_USER:-}}
      [ -n "$from" ] || die "ALERT_EMAIL_FROM is empty (and no ALERT_SMTP_USER to use instead)"
      case ${ALERT_SMTP_REQUIRE_TLS:-true} in true | false) ;; *) die "ALERT_SMTP_REQUIRE_TLS must be true or false" ;; esac
      echo "    email_configs:"
      echo "      - to: $(q "$ALERT_EMAIL_TO")"
      echo "        from: $(q "$from")"
      echo "        smarthost: $(q "$ALERT_SMTP_SMARTHOST")"
      if [ -n "${ALERT_SMTP_USER:-}" ]; then
        echo "        auth_username: $(q "$ALERT_SMTP_USER")"
        echo "        auth_password: $(q "${ALERT_SMTP_PASSWORD:-}")"
      fi
      echo "        require_tls: ${ALERT_SMTP_REQUIRE_TLS:-true}"
      echo "        headers:"
      echo "          Subject: '{{ template \"alc.title\" . }}'"
      echo "        text: '{{ template \"alc.text\" . }}'"
      echo "        html: '{{ template \"alc.html\" . }}'"
      echo "        send_resolved: true"
      receivers="$receivers email"
    fi

    # --- webhooks: ntfy (readable through ntfy's own templating) and/or any other URL (Alertmanager's JSON)
    if [ -n "${ALERT_NTFY_URL:-}" ] || [ -n "${ALERT_WEBHOOK_URL:-}" ]; then
      echo "    webhook_configs:"
    fi
    if [ -n "${ALERT_NTFY_URL:-}" ]; then
      printf '%s' "$ALERT_NTFY_URL" | grep -Eq '^https?://[^/?#]+/[^?#]+$' \
        || die "ALERT_NTFY_URL must be a topic URL like https://ntfy.sh/my-topic, without a query (value not shown: the topic is the secret)"
      # ntfy (v2.10+) fills the title and message templates from the JSON body: ?tpl=1&t=...&m=...
      t=$(urlenc < "$here/ntfy-title.tmpl"); m=$(urlenc < "$here/ntfy-message.tmpl")
      echo "      - url: $(q "$ALERT_NTFY_URL?tpl=1&t=$t&m=$m")"
      if [ -n "${ALERT_NTFY_TOKEN:-}" ]; then
        echo "        http_config:"
        echo "          authorization:"
        echo "            type: Bearer"
        echo "            credentials: $(q "$ALERT_NTFY_TOKEN")"
      fi
      echo "        send_resolved: true"
      receivers="$receivers ntfy"
    fi
    if [ -n "${ALERT_WEBHOOK_URL:-}" ]; then
      printf '%s' "$ALERT_WEBHOOK_URL" | grep -Eq '^https?://[^ ]+$' || die "ALERT_WEBHOOK_URL must be an http(s) URL without spaces (value not shown: it may hold a token)"
      echo "      - url: $(q "$ALERT_WEBHOOK_URL")"
      echo "        send_resolved: true"
      receivers="$receivers webhook"
    fi
  } > "$f.tmp"
  mv "$f.tmp" "$f"
  if [ -z "$receivers" ]; then
    say "no receiver configured (ALERT_TELEGRAM_*, ALERT_EMAIL_TO, ALERT_NTFY_URL, ALERT_WEBHOOK_URL in .env):"
    say "alerts are evaluated and listed, but nobody is told."
  else
    say "rendered $f; alerts go to:$receivers"
  fi
}

case $what in
  prometheus) render_prometheus ;;
  alertmanager) render_alertmanager ;;
  *) die "unknown '$what' (prometheus, alertmanager)" ;;
esac
if [ $# -gt 0 ]; then exec "$@"; fi
