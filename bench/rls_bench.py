"""What a row-level security policy on the session identity costs (issue 31), measured side by
side in one run, interleaved:

- a table of ROWS rows (2 million by default), 1 in 1,000 of them alice's, read by a role the
  policy applies to, with `SELECT count(*)`:
  - `plain`: no policy, the same filter written as a constant (`owner_id = 'alice'`): the floor;
  - `per_row`: `USING (owner_id = electric_auth.current_user_id())`;
  - `once`: `USING (owner_id = (SELECT electric_auth.current_user_id()))`;
- each as a sequential scan (no index: the policy is a filter, evaluated row by row unless it
  is an init plan) and as an index scan (an index on owner_id: the policy is the index
  condition, evaluated once to find the rows);
- ROUNDS rounds, the cases interleaved in each, parallel query off (one process's cost).
Reports the fastest round of each case in ms, and each policy's extra cost over the floor per
row scanned.

Self-contained: its own cluster of the server whose pg_config is $PG_CONFIG (default Debian's
15), named $RLS_BENCH_NAME (ea-bench-rls) on base port $RLS_BENCH_PORT (54346; tests/lib's
Cluster adds 100 per major above 15), using the electric_auth installed there (`make install`
builds the release library). bench/bench.py appends its section to BENCHMARKS.md; alone:
PG_CONFIG=... python3 bench/rls_bench.py [--write] (--write replaces its section in
BENCHMARKS.md).
"""

import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests/lib"))
from electric_auth_test.postgres import Cluster  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402
import stats_bench  # noqa: E402  (this directory: writing the BENCHMARKS.md section)

NAME = os.environ.get("RLS_BENCH_NAME", "ea-bench-rls")
PORT = int(os.environ.get("RLS_BENCH_PORT", "54346"))
ROWS = int(os.environ.get("RLS_BENCH_ROWS", "2000000"))
ROUNDS = int(os.environ.get("RLS_BENCH_ROUNDS", "7"))
SECRET = "rls-bench-secret-3c1f9a0b7e5d42e8a6b1c0d9f8e7a6b5"
POLICIES = {
    "plain": None,
    "per_row": "owner_id = electric_auth.current_user_id()",
    "once": "owner_id = (SELECT electric_auth.current_user_id())",
}
HEADING = "## Row-level security on the session identity (bench/rls_bench.py)"


def setup(conn):
    conn.execute("CREATE EXTENSION electric_auth")
    conn.execute("CREATE ROLE ea_reader")
    for name, policy in POLICIES.items():
        conn.execute(f"CREATE TABLE docs_{name} (owner_id text NOT NULL, body text)")
        conn.execute(f"INSERT INTO docs_{name} SELECT CASE WHEN n % 1000 = 0 THEN 'alice' "
                     f"ELSE 'user-' || (n % 997) END, 'doc ' || n "
                     f"FROM generate_series(1, {ROWS}) n")
        conn.execute(f"CREATE INDEX ON docs_{name} (owner_id)")
        if policy:
            conn.execute(f"ALTER TABLE docs_{name} ENABLE ROW LEVEL SECURITY")
            conn.execute(f"CREATE POLICY owner ON docs_{name} USING ({policy})")
        conn.execute(f"VACUUM ANALYZE docs_{name}")
        conn.execute(f"GRANT SELECT ON docs_{name} TO ea_reader")


def queries():
    cases = []
    for scan in ("seq", "index"):
        for name in POLICIES:
            where = " WHERE owner_id = 'alice'" if name == "plain" else ""
            cases.append((scan, name, f"SELECT count(*) FROM docs_{name}{where}"))
    return cases


def measure(conn):
    token = Minter(SECRET, sub="alice", lifetime=86400)()
    # No prepared statements: a plan prepared under one case's enable_* settings would be
    # reused under the next case's.
    conn.prepare_threshold = None
    conn.execute("SET electric_auth.session_scope = allow")
    conn.execute("SET max_parallel_workers_per_gather = 0")
    conn.execute("SET ROLE ea_reader")
    assert conn.execute("SELECT electric_auth.authenticate(%s, 'session')",
                        (token,)).fetchone()[0] == "alice"
    cases = queries()
    times = {(scan, name): [] for scan, name, _ in cases}
    plans = {}
    expected = ROWS // 1000
    for _ in range(ROUNDS):
        for scan, name, sql in cases:
            seq = scan == "seq"
            conn.execute(f"SET enable_seqscan = {'on' if seq else 'off'}")
            conn.execute(f"SET enable_indexscan = {'off' if seq else 'on'}")
            conn.execute(f"SET enable_bitmapscan = {'off' if seq else 'on'}")
            conn.execute(f"SET enable_indexonlyscan = {'off' if seq else 'on'}")
            if (scan, name) not in plans:
                plans[(scan, name)] = "\n".join(
                    r[0] for r in conn.execute(f"EXPLAIN (COSTS OFF) {sql}"))
            start = time.perf_counter()
            count = conn.execute(sql).fetchone()[0]
            times[(scan, name)].append((time.perf_counter() - start) * 1000)
            assert count == expected, (scan, name, count)
    return {case: min(samples) for case, samples in times.items()}, plans


def render(best, plans, major):
    lines = [HEADING, "",
             f"PostgreSQL {major}, this machine; `SELECT count(*)` of {ROWS:,} rows, alice's "
             f"{ROWS // 1000:,} of them, by a role the policy applies to, with alice's identity "
             f"in force (`authenticate`); the fastest of {ROUNDS} interleaved rounds, parallel "
             "query off. `plain` is the same filter as a constant, with no policy: the floor. "
             "Rerun: `PG_CONFIG=... python3 bench/rls_bench.py --write`.", "",
             "| scan | policy | ms per query | over the floor | per row scanned |",
             "|---|---|---:|---:|---:|"]
    for scan, rows_scanned in (("seq", ROWS), ("index", ROWS // 1000)):
        floor = best[(scan, "plain")]
        for name in POLICIES:
            ms = best[(scan, name)]
            label = "none (constant)" if name == "plain" else f"`{POLICIES[name]}`"
            extra = (ms - floor) / floor * 100
            per_row = (ms - floor) * 1000 / rows_scanned
            lines.append(f"| {scan} | {label} | {ms:.1f} | "
                         f"{'—' if name == 'plain' else f'{extra:+.0f}%'} | "
                         f"{'—' if name == 'plain' else f'{per_row:+.3f} µs'} |")
    shown = plans[("seq", "per_row")].replace("\n", " / ")
    once = plans[("seq", "once")].replace("\n", " / ")
    lines += ["", f"Plans (sequential scan): `per_row`: {shown}; `once`: {once}.", "",
              "Write the policy as `owner_id = (SELECT electric_auth.current_user_id())`: the "
              "sub-select is an init plan, evaluated once per query, and the comparison is then "
              "with a constant. Written without it, the call is a filter evaluated for every "
              "row a sequential scan reads. With an index on `owner_id` both forms are the index "
              "condition and cost the same.", ""]
    return "\n".join(lines)


def run(pg_config=None):
    """Measures and returns the BENCHMARKS.md section (markdown)."""
    pg_config = pg_config or os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
    cluster = Cluster(NAME, PORT, config=pg_config, preload="").fresh(
        "electric_auth.mode = 'secure'\n"
        "electric_auth.jwt_alg = 'HS256'\n"
        f"electric_auth.jwt_key = '{SECRET}'\n"
        "shared_buffers = '512MB'")
    try:
        with cluster.connect() as conn:
            print(f"rls bench: {ROWS:,} rows in three tables ...", flush=True)
            setup(conn)
            print("rls bench: the policies, interleaved ...", flush=True)
            best, plans = measure(conn)
        return render(best, plans, cluster.major)
    finally:
        cluster.stop()


if __name__ == "__main__":
    stats_bench.standalone(run, HEADING, "rls bench")
