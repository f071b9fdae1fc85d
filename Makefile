# The two commands: `make run` and `make test`. Both install or start what is
# missing (redis-server) first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test redis lint bench bench-http

redis:
	@scripts/ensure-redis.sh

ADDR = $${HTTP_ADDR:-127.0.0.1:8000}

# Embedded defaults: SQLite file under ./data (migrated, seeded), the local
# Redis started by scripts/ensure-redis.sh, cache warmed at start.
run: redis
	@echo "ngx-agent: starting on http://$(ADDR) (database $${DATABASE_URL:-sqlite://data/ngx.db}, cache $${REDIS_URL:-redis://127.0.0.1:6379})"
	@echo "  API docs (Swagger UI): http://$(ADDR)/docs"
	@echo "  Prometheus metrics:    http://$(ADDR)/metrics"
	@echo "  Readiness:             http://$(ADDR)/health/ready"
	$(CARGO) run --release -p ngx-agent

test: redis
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

bench: redis
	$(CARGO) bench -p ngx-cache

# End-to-end HTTP load benchmark: cache off vs on, side-by-side table.
bench-http: redis
	$(CARGO) run --release -p ngx-agent -- bench
