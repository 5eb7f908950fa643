# electric_auth: the README's two commands are `make demo` and `make test`.
PG_CONFIG ?= /usr/bin/pg_config
# The Postgres majors `make test` covers; `make test PG=17` is the fast path for one of them.
PG_VERSIONS := 15 16 17 18
PG ?= $(PG_VERSIONS)

.PHONY: check-cycles test test-serial demo bootstrap install install-dev fmt-check clippy test-core test-majors \
	test-upgrade test-package package regress-update fuzz bench mutants test-citus \
	check-versions dist

bootstrap:
	@bash scripts/bootstrap.sh

## make test: every test layer on every major in $(PG); fails on the first failure. The upgrade
## and .deb tests belong to Debian's Postgres 15 and run when 15 is in $(PG). The layers run
## side by side where they can (scripts/test_all.py: one compile at a time, up to EA_SUITES=4
## suites at once); each layer's output is in target/test-logs/.
test: bootstrap check-versions fmt-check check-cycles
	python3 scripts/test_all.py $(PG)
	@echo "make test: all layers passed on Postgres $(PG)"

## make test-serial: the same layers one after the other (the old make test).
test-serial: bootstrap check-versions fmt-check clippy check-cycles test-core test-majors \
	$(if $(filter 15,$(PG)),test-upgrade test-package) fuzz
	@echo "make test-serial: all layers passed on Postgres $(PG)"

# One version everywhere: Cargo.toml, core/Cargo.toml, META.json (top level and provides),
# electric_auth.control and the README's install commands.
check-versions:
	bash scripts/check_versions.sh

fmt-check:
	cargo fmt --all -- --check

# Each major compiles its own cfg blocks, so each is linted.
clippy:
	cargo clippy -p electric_auth_core --all-targets -- -D warnings
	for v in $(PG); do \
	  cargo clippy -p electric_auth --all-targets --no-default-features \
	    --features "pg$$v pg_test" -- -D warnings || exit 1; \
	done

# No module may import one that imports it back, in either crate (read from the sources in
# about a second; the self-test plants a cycle and fails if it is not found). See the README.
check-cycles:
	python3 scripts/check_cycles.py
	python3 scripts/check_cycles.py --self-test

test-core:
	cargo test -p electric_auth_core

# Per major: #[pg_test]s (cargo pgrx test, run as `postgres` in a fresh data dir), pg_regress,
# the security suite (privileges, secrecy, hostile tokens; tokens minted by PyJWT) and a hot
# standby built with pg_basebackup. See scripts/test_major.sh.
test-majors:
	for v in $(PG); do bash scripts/test_major.sh $$v || exit 1; done

# 0.1.0 (built from its tag) with dependent objects, upgraded in place to this version.
test-upgrade:
	python3 tests/upgrade/test_upgrade.py

# The Postgres 15 .deb installed into Debian's Postgres 15, used, and removed.
## make test-citus CITUS_SRC=<dir>: the Citus layer (coordinator + two workers on Postgres 17),
## not in `make test`: Citus's source is in no registry. Without CITUS_SRC it says it skipped.
test-citus: bootstrap
	@CITUS_SRC="$(CITUS_SRC)" bash scripts/test_citus.sh

test-package:
	$(MAKE) package PG=15
	bash tests/package/test_deb.sh

## make dist: the PGXN source distribution of HEAD, target/dist/electric_auth-VERSION.zip
## (git archive with META.json at its root), after the version check.
dist: check-versions
	bash scripts/dist.sh

## make package: per major in $(PG), a tarball and a Debian package under target/packages/.
package: bootstrap
	for v in $(PG); do bash scripts/package.sh $$v || exit 1; done

# libFuzzer on the core verifier (both modes, every algorithm family) from the seed corpus.
FUZZ_SECONDS ?= 30
fuzz:
	mkdir -p core/fuzz/corpus/verify
	cd core/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run verify corpus/verify seeds -- \
	  -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=1

# Regenerates tests/pg_regress/expected from every major in order (15 writes NAME.out; a later
# major adds NAME_<M-15>.out only where it prints differently). Review with git diff.
## make mutants: cargo-mutants on the pgrx-free core (not part of make test; ~15 minutes).
## Survivors are listed in mutants.out/missed.txt.
mutants:
	command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
	cargo mutants --package electric_auth_core --timeout 120 --no-shuffle

regress-update: bootstrap
	rm -f tests/pg_regress/expected/*_[0-9].out
	for v in $(PG_VERSIONS); do \
	  pg_config=$$(bash -c 'source scripts/pg_versions.sh && pg_config_for '$$v) && \
	  cargo pgrx install --pg-config $$pg_config >/dev/null && \
	  PG_CONFIG=$$pg_config bash scripts/pg_regress.sh --update || exit 1; \
	done

## make bench: the published figures (BENCHMARKS.md, bench/chart.svg) on a throwaway cluster of
## $(PG_CONFIG)'s server (EA_BENCH_PORT, default 54335; EA_BENCH_NAME; EA_BENCH_BASELINE).
bench: bootstrap install
	PG_CONFIG=$(PG_CONFIG) python3 bench/bench.py

## make install PG_CONFIG=...: an optimised build into an existing Postgres (15 to 18).
install: bootstrap
	cargo pgrx install --release --pg-config $(PG_CONFIG)

install-dev:
	cargo pgrx install --pg-config $(PG_CONFIG)

## make demo [PG_CONFIG=...]: the README's walkthrough on a throwaway cluster of that server.
demo: bootstrap install
	@PG_CONFIG=$(PG_CONFIG) bash scripts/demo.sh
