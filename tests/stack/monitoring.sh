#!/usr/bin/env bash
# `make test-monitoring` (part of `make test`; issue 13): the monitoring part of the stack live on
# ../shared/tools/podman-stack (its Prometheus / Alertmanager stand-ins are Debian's 2.42 / 0.25
# binaries under the official names; its GPU exporter serves recorded nvidia-smi values).
#
# The server combination exactly as `make up` assembles it (scripts/compose.sh: docker-compose.yml +
# compose/monitoring.yml + the tunnel profile; GPU=0 as smoke.sh, the GPU overlay proves nothing here),
# plus the TEST-ONLY tests/stack/monitoring.override.yml: 2 s scrape/evaluation, 1 s group_wait, the
# GPU exporter, a webhook receiver container (tests/stack/webhook-receiver.js) that also plays
# Telegram's Bot API, and a rules directory whose OllamaUnreachable has `for: 10s` instead of 1m.
# The receivers are configured the owner's way, in .env: ALERT_TELEGRAM_*, ALERT_NTFY_URL, ALERT_WEBHOOK_URL.
#
#   1 up: every container running/healthy; every scrape target up (prometheus, alertmanager, api
#     (basic auth as the default scrape user), gpu, cloudflared); the rules loaded
#   2 ollama stopped (callers keep getting 503): "Ollama unreachable" reaches Telegram, ntfy and the webhook
#   3 ollama started again (a generation succeeds): the resolved message reaches them
#   4 the energy series from the GPU exporter's power draw + SYSTEM_BASE_WATTS
# It prints the messages as the owner receives them. Cleanup as smoke.sh (tests/stack/lib.sh).
#
# Environment: PODMAN_STACK (path of the tool), STACK_KEEP=1 (leave the stack and files for a look).
set -euo pipefail
LIB_NAME=test-monitoring LIB_P=alc-mon
# shellcheck source=tests/stack/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
lib_init

fail() {
  echo "$LIB_NAME: FAIL: $*" >&2
  if [ -n "${ARGS+x}" ] && [ ${#ARGS[@]} -gt 0 ]; then
    echo "---- containers:" >&2; "${ENGINE[@]}" states "$P" 2>&1 | indent >&2 || true
    for s in prometheus alertmanager api webhook; do
      echo "---- last 15 log lines of $s:" >&2
      dc logs --no-color --tail=15 "$s" 2>&1 | indent >&2 || true
    done
  fi
  exit 1
}
trap 'rc=$?; echo "$LIB_NAME: FAIL: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' ERR
trap lib_cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM

dc() { (cd "$copy" && docker-compose "${ARGS[@]}" "$@"); }
# GET on Prometheus' API from inside its container (nothing is published)
prom() { dc exec -T prometheus wget -q -T 5 -O - "http://localhost:9090$1" 2>/dev/null; }
received() { dc exec -T webhook cat /tmp/received.ndjson 2>/dev/null || true; }
# req METHOD PATH USER:PW [JSON]: CODE and BODY, through nginx's published port
req() {
  local out a=(-s -m 60 -o "$tmp/body" -w '%{http_code}' -X "$1" -u "$3")
  [ -z "${4:-}" ] || a+=(-H 'Content-Type: application/json' --data "$4")
  out=$(curl "${a[@]}" "http://127.0.0.1:$HTTP_PORT$2" || true)
  CODE=$out; BODY=$(cat "$tmp/body" 2>/dev/null || true)
}
GEN='{"prompt":"Say hello","stream":false}'

# --------------------------------------------------------------------------------------------- setup
say "repo $root; podman-stack $PS; project $P; files in $tmp"
say "== 0  setup: podman-stack, a copy of the tree, make init, receivers in .env"
lib_setup
(cd "$copy" && make --no-print-directory init) >"$tmp/init.log" 2>&1 || fail "make init failed: $(cat "$tmp/init.log")"
HTTP_PORT=$(free_port)
env_set GPU 0
env_set TUNNEL 1
env_set COMPOSE_PROJECT_NAME "$P"
env_set HTTP_PORT "$HTTP_PORT"
env_set MODELS "llama3.1:8b,nomic-embed-text"
# the owner's receivers (the receiver container answers for all three)
TG_TOKEN="123456789:AAH$(head -c 64 /dev/urandom | LC_ALL=C tr -dc 'A-Za-z0-9' | cut -c1-30)"
env_set ALERT_TELEGRAM_BOT_TOKEN "$TG_TOKEN"
env_set ALERT_TELEGRAM_CHAT_ID 987654321
env_set ALERT_NTFY_URL http://webhook:8080/alc-owner-topic
env_set ALERT_WEBHOOK_URL http://webhook:8080/hook
users=$(envv AUTH_USERS)
WALDUS="waldus:$(printf '%s' "$users" | tr ',' '\n' | sed -n 's/^waldus://p')"
[ "${WALDUS#waldus:}" != "" ] || fail "make init: no waldus password in AUTH_USERS"
[ -z "$(envv METRICS_SCRAPE_USER)" ] && [ -z "$(envv METRICS_USERS)" ] || fail "expected the defaults: Prometheus scrapes as the first admin"
# the test's rules: the repo's, with OllamaUnreachable's for: 1m shortened to 10s
export MON_TEST_RULES_DIR=$tmp/rules
mkdir -p "$MON_TEST_RULES_DIR"
cp "$copy/compose/monitoring/rules/"*.yml "$MON_TEST_RULES_DIR/"
sed -i '/- alert: OllamaUnreachable/,/for:/ s/for: 1m/for: 10s/' "$MON_TEST_RULES_DIR/alerts.yml"
grep -A12 'alert: OllamaUnreachable' "$MON_TEST_RULES_DIR/alerts.yml" | grep -q 'for: 10s' || fail "could not shorten OllamaUnreachable's for:"
chmod -R a+rX "$tmp"    # prometheus runs as nobody
read -r -a ARGS <<<"$( (cd "$copy" && scripts/compose.sh server --print) | tr '\n' ' ') -f tests/stack/monitoring.override.yml"
printf '%s\n' "${ARGS[@]}" | grep -qx compose/monitoring.yml || fail "scripts/compose.sh server has no compose/monitoring.yml by default"
LIB_DOWN_ARGS=("${ARGS[@]}")
ok "compose arguments: ${ARGS[*]}"

# ------------------------------------------------------------------------------------------ step 1
say "== 1  up: all healthy, every scrape target up"
T1=$(date +%s.%N)
export PODMAN_STACK_TIMEOUT=${PODMAN_STACK_TIMEOUT:-600}   # 2 busy cores: the api build and first starts can be slow
(cd "$copy" && "$PS" up "${ARGS[@]}" -- --build) >"$tmp/up.log" 2>&1 || { indent <"$tmp/up.log" | tail -n 40 >&2; fail "podman-stack up failed"; }
grep -E 'NOTE|WARNING' "$tmp/up.log" | grep -iE 'prometheus|alertmanager|gpu' | sed 's/^/    /' || true
ok "stack up in $(since "$T1") s: $("${ENGINE[@]}" states "$P" | awk '{ printf "%s=%s/%s ", $1, $2, $3 }')"
dc logs --no-color prometheus alertmanager 2>&1 | grep -E 'render\((prometheus|alertmanager)\)' | sed 's/^[^|]*| //' | indent
# nothing of monitoring published
published=$("${ENGINE[@]}" published "$P")
[ "$published" = "nginx 127.0.0.1:$HTTP_PORT->80/tcp" ] || fail "expected only nginx on 127.0.0.1:$HTTP_PORT, got: $published"
ok "only nginx is published (Prometheus and Alertmanager are not)"
want="alertmanager api cloudflared gpu prometheus"
targets=""
for _ in $(seq 60); do
  targets=$(prom /api/v1/targets | node -e '
    let s = ""; process.stdin.on("data", (d) => { s += d; }).on("end", () => {
      try { const t = JSON.parse(s).data.activeTargets;
        console.log(t.map((x) => `${x.labels.job}=${x.health}${x.lastError ? "(" + x.lastError + ")" : ""}`).sort().join(" "));
      } catch { console.log(""); } });' || true)
  [ "$targets" = "$(for j in $want; do printf '%s=up ' "$j"; done | sed 's/ $//')" ] && break
  sleep 2
done
echo "    targets: $targets"
[ "$targets" = "$(for j in $want; do printf '%s=up ' "$j"; done | sed 's/ $//')" ] || fail "not every scrape target is up: $targets"
ok "every scrape target is up: $want"
rules=$(prom /api/v1/rules | node -e 'let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>{const g=JSON.parse(s).data.groups;console.log(g.reduce((n,x)=>n+x.rules.length,0), g.map((x)=>x.name).join(","))})')
echo "    rules: $rules"
[ "${rules%% *}" = 27 ] || fail "expected 27 rules (13 alerts, 10 energy, 4 config), got: $rules"
ok "27 rules loaded (alerts, energy, and the alc_config_* series from .env)"
req POST /v1/generate "$WALDUS" "$GEN"
[ "$CODE" = 200 ] || fail "generation before the test: HTTP $CODE $BODY"
ok "a generation through nginx: 200"

# ------------------------------------------------------------------------------------------ step 2
say "== 2  ollama stopped: \"Ollama unreachable\" reaches the receivers"
dc stop ollama 2>&1 | indent
T2=$(date +%s.%N)
fired=""
for _ in $(seq 60); do
  req POST /v1/generate "$WALDUS" "$GEN"     # Waldus keeps calling: 503 OLLAMA_UNAVAILABLE
  [ "$CODE" = 503 ] || fail "generation with ollama stopped: HTTP $CODE, expected 503: $BODY"
  # grep -c, not -q: an early exit of grep would fail the pipe (pipefail) while a match was found
  if [ "$(received | grep -c '"url":"/hook".*alertname\\":\\"OllamaUnreachable' || true)" -gt 0 ]; then fired=1; break; fi
  sleep 2
done
[ -n "$fired" ] || fail "no OllamaUnreachable notification within 120 s; received: $(received | head -c 600)"
sleep 3   # the three integrations of the group are sent together; let all arrive
R_FIRING=$(received)
ok "firing notification $(since "$T2") s after ollama stopped (for: 10s in this test, 1m in the repo)"

# ------------------------------------------------------------------------------------------ step 3
say "== 3  ollama started again: the resolved message"
n_before=$(printf '%s\n' "$R_FIRING" | grep -c . || true)
dc start ollama 2>&1 | indent
T3=$(date +%s.%N)
served=""
for _ in $(seq 45); do
  req POST /v1/generate "$WALDUS" "$GEN"
  [ "$CODE" = 200 ] && { served=1; break; }
  sleep 2
done
[ -n "$served" ] || fail "no generation served after ollama came back: $CODE $BODY"
ok "generation served again $(since "$T3") s after compose start"
resolved=""
for _ in $(seq 45); do
  if [ "$(received | tail -n +"$((n_before + 1))" | grep -c '"url":"/hook".*\\"status\\":\\"resolved\\".*OllamaUnreachable' || true)" -gt 0 ]; then resolved=1; break; fi
  sleep 2
done
[ -n "$resolved" ] || fail "no resolved notification within 90 s; received since: $(received | tail -n +"$((n_before + 1))" | head -c 600)"
sleep 3
R_ALL=$(received)
ok "resolved notification $(since "$T3") s after ollama was started"

# what each integration got, as the owner sees it
printf '%s\n' "$R_ALL" | node -e '
  const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const token = process.argv[1];
  const fail = (m) => { console.error("FAIL: " + m); process.exit(1); };
  // only the OllamaUnreachable group (TunnelDown / ApiScrapeFailing may fire too while the stack starts)
  const ours = (l) => l.body.includes("OllamaUnreachable");
  const tg = lines.filter((l) => l.url.endsWith("/sendMessage") && ours(l));
  const nt = lines.filter((l) => l.url.startsWith("/alc-owner-topic") && ours(l));
  const wh = lines.filter((l) => l.url === "/hook" && ours(l));
  const others = [...new Set(lines.filter((l) => l.url === "/hook" && !ours(l)).map((l) => { const b = JSON.parse(l.body); return `${b.commonLabels.alertname} ${b.status}`; }))];
  if (others.length) console.log("    (also received, from the stack starting up: " + others.join(", ") + ")");
  for (const [name, list] of [["telegram", tg], ["ntfy", nt], ["webhook", wh]]) {
    if (list.length < 2) fail(`${name}: ${list.length} request(s), expected firing + resolved`);
  }
  if (!tg.every((l) => l.url === `/bot${token}/sendMessage`)) fail("telegram: not the Bot API path of the configured token");
  const text = (l) => { const b = l.contentType.includes("json") ? JSON.parse(l.body) : Object.fromEntries(new URLSearchParams(l.body)); return b; };
  const first = text(tg[0]), last = text(tg[tg.length - 1]);
  if (first.parse_mode !== "HTML" || String(first.chat_id) !== "987654321") fail("telegram: parse_mode/chat_id " + JSON.stringify(first));
  if (!/Ollama has not answered the api for more than 1 minute/.test(first.text) || !/What to do: /.test(first.text)) fail("telegram firing text: " + first.text);
  if (!/Resolved:.*Ollama answers the api again/.test(last.text)) fail("telegram resolved text: " + last.text);
  const q = new URL(nt[0].url, "http://x").searchParams;
  if (q.get("tpl") !== "1" || !/annotations\.summary/.test(q.get("m"))) fail("ntfy: no message template in the URL");
  const w1 = JSON.parse(wh[0].body), w2 = JSON.parse(wh[wh.length - 1].body);
  if (w1.status !== "firing" || w1.commonLabels.alertname !== "OllamaUnreachable") fail("webhook firing: " + wh[0].body.slice(0, 300));
  if (w2.status !== "resolved") fail("webhook resolved: " + wh[wh.length - 1].body.slice(0, 300));
  const ind = (s) => s.split("\n").map((x) => "    | " + x).join("\n");
  console.log("    Telegram, firing (sendMessage text, parse_mode HTML):\n" + ind(first.text));
  console.log("    Telegram, resolved:\n" + ind(last.text));
  console.log("    ntfy: POST " + nt[0].url.split("?")[0] + "?tpl=1&t=<title template>&m=<message template>, body = Alertmanager JSON; ntfy shows:");
  console.log(ind("title:   " + q.get("t") + "\nmessage: " + q.get("m")));
  console.log("    webhook: Alertmanager JSON, firing summary: " + w1.alerts[0].annotations.summary);
  console.log("             resolved: " + w2.alerts[0].annotations.resolved);
' "$TG_TOKEN" || fail "the notifications are not what the owner should get"
ok "Telegram, ntfy and the webhook each got the firing and the resolved message"

# ------------------------------------------------------------------------------------------ step 4
say "== 4  energy from the GPU exporter's power draw"
energy=""
for _ in $(seq 40); do
  energy=$(prom '/api/v1/query?query=alc%3Apower_draw_watts' | node -e 'let s="";process.stdin.on("data",(d)=>{s+=d}).on("end",()=>{try{const r=JSON.parse(s).data.result;console.log(r.length?Number(r[0].value[1]).toFixed(1):"")}catch{console.log("")}})' || true)
  [ -n "$energy" ] && break
  sleep 2
done
[ -n "$energy" ] || fail "no alc:power_draw_watts series"
awk -v e="$energy" -v b="$(envv SYSTEM_BASE_WATTS)" 'BEGIN { exit !(e > b && e < b + 171) }' \
  || fail "alc:power_draw_watts $energy W is not SYSTEM_BASE_WATTS $(envv SYSTEM_BASE_WATTS) + a 3060's draw (0..170 W)"
ok "alc:power_draw_watts = $energy W (GPU stand-in + SYSTEM_BASE_WATTS $(envv SYSTEM_BASE_WATTS))"

echo
say "all steps passed"
