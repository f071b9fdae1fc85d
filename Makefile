# `make run` and `make test` install or start what is missing (redis-server)
# first. `make lint` runs the quality gates, `make bench` the library's
# Criterion benchmarks, `make bench-http` the end-to-end load benchmark.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run run-cluster test redis toolchain lint bench bench-http

# The Rust toolchain pinned in rust-toolchain.toml.
toolchain:
	@scripts/ensure-toolchain.sh

redis: toolchain
	@scripts/ensure-redis.sh

ADDR = $${HTTP_ADDR:-127.0.0.1:8000}

# Embedded defaults: SQLite file under ./data (migrated, seeded), the local
# Redis started by scripts/ensure-redis.sh, cache warmed at start.
run: redis
	@echo "ngx-agent: starting on http://$(ADDR) (database $${DATABASE_URL:-sqlite://data/ngx.db}, cache $${REDIS_URL:-redis://localhost:6379})"
	@echo "  Status page:           http://$(ADDR)/"
	@echo "  API docs (Swagger UI): http://$(ADDR)/docs"
	@echo "  Prometheus metrics:    http://$(ADDR)/metrics"
	@echo "  Readiness:             http://$(ADDR)/health/ready"
	@if [ -n "$${ADMIN_TOKEN:-}" ]; then echo "  Admin endpoints:       enabled (ADMIN_TOKEN is set)"; \
	 else echo "  Admin endpoints:       disabled; enable them with ADMIN_TOKEN=<secret> make run"; fi
	$(CARGO) run --release -p ngx-agent

# The same service on a local six-node Redis Cluster (three primaries, three
# replicas on ports 7000-7005, started by scripts/ensure-cluster.sh, no Docker).
run-cluster: toolchain
	@urls="$$(scripts/ensure-cluster.sh)" && \
	 echo "ngx-agent: starting on http://$(ADDR) on the Redis Cluster $$urls" && \
	 echo "  Status page: http://$(ADDR)/   Cache health: http://$(ADDR)/health/ready" && \
	 REDIS_CLUSTER=true REDIS_URL="$$urls" $(CARGO) run --release -p ngx-agent

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
