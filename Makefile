# electric_auth: the README's two commands are `make demo` and `make test`.
PG_CONFIG ?= /usr/bin/pg_config
PGDATA_TEST ?= /tmp/ea-pgdata

.PHONY: test demo bootstrap install install-dev fmt-check clippy test-core test-pg test-regress regress-update test-security fuzz bench

bootstrap:
	@bash scripts/bootstrap.sh

## make test: every test layer; fails on the first failure.
test: bootstrap fmt-check clippy test-core test-pg test-regress test-security fuzz
	@echo "make test: all layers passed"

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --features pg_test -- -D warnings

test-core:
	cargo test -p electric_auth_core

# Postgres refuses to run as root: pgrx runs its test cluster as `postgres` in a fresh data dir.
test-pg:
	rm -rf $(PGDATA_TEST)
	cargo pgrx test pg15 --runas postgres --pgdata $(PGDATA_TEST)

test-regress: install-dev
	bash scripts/pg_regress.sh

# Privileges, secrecy (server log at debug5), key rotation and hostile tokens, on throwaway
# clusters with and without shared_preload_libraries; tokens minted by PyJWT.
test-security: install-dev
	python3 tests/security/test_security.py

# libFuzzer on the core verifier (both modes, every algorithm family) from the seed corpus.
FUZZ_SECONDS ?= 30
fuzz:
	mkdir -p core/fuzz/corpus/verify
	cd core/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run verify corpus/verify seeds -- \
	  -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1

regress-update: install-dev
	bash scripts/pg_regress.sh --update

## make bench: the published figures (BENCHMARKS.md, bench/chart.svg) on a throwaway cluster.
bench: bootstrap install
	python3 bench/bench.py

## make install PG_CONFIG=...: an optimised build into an existing Postgres.
install: bootstrap
	cargo pgrx install --release --pg-config $(PG_CONFIG)

install-dev:
	cargo pgrx install --pg-config $(PG_CONFIG)

demo: bootstrap install
	@bash scripts/demo.sh
