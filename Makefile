# The two commands: `make run` and `make test`. Both install or start what is
# missing (redis-server) first.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test redis lint bench

redis:
	@scripts/ensure-redis.sh

run: redis
	$(CARGO) run --release -p ngx-agent

test: redis
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

bench: redis
	$(CARGO) bench -p ngx-cache
