# ai-local-core — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
COMPOSE := scripts/compose.sh
MODEL ?=
# `docker compose exec` wants a terminal unless told -T (make run from scripts, CI, cron)
EXEC_T = $$([ -t 0 ] || echo -T)

.PHONY: help init up dev dev-cpu down logs ps pull models tunnel-url local test test-api test-infra test-security test-stack test-monitoring bench
.PHONY: doctor backup restore upgrade

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

init: ## create .env from .env.example with generated passwords (never overwrites)
	@scripts/init-env.sh

up: ## server: GPU + tunnel + production models (runs init if .env is missing)
	@scripts/up.sh server

dev: ## Mac: api + nginx in Docker, models on the native Ollama.app (Metal)
	@scripts/up.sh dev

dev-cpu: ## the ollama container on CPU, small models, no tunnel
	@scripts/up.sh dev-cpu

down: ## stop and remove the containers (the models volume stays)
	@$(COMPOSE) last down --remove-orphans

logs: ## follow the logs of all services
	@$(COMPOSE) last logs -f --tail=200

ps: ## state and health of the services
	@$(COMPOSE) last ps

pull: ## pull one more model: make pull MODEL=qwen2.5:7b
	@test -n "$(MODEL)" || { echo "usage: make pull MODEL=name:tag"; exit 2; }
	@if [ "$$(cat .stack-mode 2>/dev/null)" = dev ]; then ollama pull "$(MODEL)"; \
	 else $(COMPOSE) last exec $(EXEC_T) ollama ollama pull "$(MODEL)"; fi

models: ## models present in ollama
	@if [ "$$(cat .stack-mode 2>/dev/null)" = dev ]; then ollama list; \
	 else $(COMPOSE) last exec $(EXEC_T) ollama ollama list; fi

tunnel-url: ## public URL of the Cloudflare quick tunnel
	@scripts/tunnel-url.sh

# ---- operations (issue 14): docs/operations.md
doctor: ## is this machine ready? one line per check (ok / warn / FAIL + the fix); exit 1 on FAIL
	@scripts/doctor.sh $(MODE)

backup: ## one archive (mode 600) of .env, the model list with digests, monitoring config, silences -> BACKUP_DIR
	@scripts/backup.sh

restore: ## put a backup back: make restore FILE=backups/ai-local-core-....tar.gz (then make up)
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/ai-local-core-YYYYmmdd-HHMMSS.tar.gz"; exit 2; }
	@scripts/restore.sh "$(FILE)"

upgrade: ## to the versions pinned in this checkout: pull first, recreate what changed, roll back if unhealthy
	@scripts/upgrade.sh
# ---- end operations
local: ## the stack without containers (system nginx + API), see scripts/local-stack.sh
	@scripts/local-stack.sh

bench: ## gateway overhead vs the upstream, a bare proxy and Portkey, routing, streaming, memory, overload (~3 min, docs/benchmarks.md; OLLAMA_BASE_URL=... adds a real Ollama)
	cd services/api && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build
	node tests/bench/bench.js

test: ## every test of the repo; a suite this machine cannot run: one SKIPPED line at the end (CI=true: fails)
	@skips=$$(mktemp); rc=0; \
	 TEST_SKIP_LOG=$$skips $(MAKE) --no-print-directory test-api test-infra test-stack test-monitoring || rc=$$?; \
	 cat "$$skips"; rm -f "$$skips"; exit $$rc

test-api: ## the API's own tests (jest; the admin Docker suite needs root + podman)
	cd services/api && npm ci --no-audit --no-fund && npm run lint && npx jest

test-infra: ## defaults, compose files, nginx config, the local stack through real nginx (node --test tests/)
	cd services/api && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build
	node --test tests/

test-stack: ## the whole compose stack up for real on podman (root + the podman-stack tool; see tests/stack/smoke.sh)
	tests/stack/smoke.sh
	tests/stack/backup-live.sh

test-security: ## the security suite alone (tests/security, also part of test-infra): attacks through nginx and at the API
	cd services/api && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build
	node --test tests/security/ tests/setup-ubuntu.test.js

test-monitoring: ## Prometheus + Alertmanager live on podman-stack: targets up, ollama down -> alert at a webhook, resolved (tests/stack/monitoring.sh)
	tests/stack/monitoring.sh
