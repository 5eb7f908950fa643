"""What a full revocation list costs a verification (issue 33), measured side by side with a
server that has revoked nothing, in the same run, interleaved:

- two preloaded clusters of the same server (revocation needs shared_preload_libraries), both
  with electric_auth and the same measured tables, the same tokens and the same settings:
  `revoked`, where REVOKED (99,990 by default: electric_auth.max_revocations' default, 100,000,
  less room for the pgbench run's revocation, as the list refuses entries past it) distinct
  HS256 tokens of other users were revoked by a superuser in ONE transaction
  (`SELECT count(electric_auth.revoke_token(t)) FROM revoke_me`), so that every verification
  there hashes the token and probes the shared table; and `unrevoked`, where the list is empty
  (one atomic load per verification);
- HS256 and ES256 `user_id` over tables of distinct PyJWT tokens (none of them revoked), in many
  short rounds of one scan in each cluster's backend side by side (alternating which goes
  first). Per round, each backend's on-CPU µs per call (/proc/PID/schedstat); reported: the
  fastest of each, the median of the per-round differences revoked − unrevoked and of the
  ratios revoked / unrevoked, each with a 95% bootstrap interval (bench/stats_bench.py's
  statistics);
- pgbench, CLIENTS clients, -T SECONDS, -M prepared, each transaction `user_id` of a random HS256
  token of the revoked cluster's table (ids 1 .. n-1) while, REVOKE_AT seconds into the run,
  another connection revokes the table's token n (committed): pgbench's failed transactions
  and aborted clients (none wanted: the revocation's commit and the change of the shared table
  must not disturb busy backends), its tps second by second, and that the token is refused
  right after the commit by a session opened before it and, after the run, by a new session.

Before the timing, sanity checks: a revoked token is refused (28000 `Token has been revoked`) in
the revoked cluster and verifies in the unrevoked one; the first token of each measured table
verifies in both.

Targets (issue 33): with 100,000 entries revoked (here 99,990: the list at its default size),
HS256 and ES256 `user_id` at most 0.05 µs more per call (the difference's 95% interval ends at
or below 0.05 µs) and within noise (the ratio's 95% interval holds 1 or ends at or below 1.03);
a revocation reaches CLIENTS busy backends without a failed transaction.

Self-contained: two preloaded clusters of the server whose pg_config is $PG_CONFIG (default
Debian's 15), named $REVOCATION_BENCH_NAME (ea-bench-revoked) and ...-unrevoked on base ports
$REVOCATION_BENCH_PORT (54378) and the next (tests/lib's Cluster adds 100 per major above 15),
using the electric_auth installed there (`make install` builds the release library). Rounds:
$REVOCATION_BENCH_ROUNDS (HS256, default 61), $REVOCATION_BENCH_ROUNDS_ASYM (ES256, default
21); entries: $REVOCATION_BENCH_REVOKED. bench/bench.py appends its section to BENCHMARKS.md;
alone: PG_CONFIG=... python3 bench/revocation_bench.py [--write] (--write replaces its section
in BENCHMARKS.md).
"""

import os
import pathlib
import re
import subprocess
import sys
import time

import psycopg

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests/lib"))
from electric_auth_test import scratch_dir  # noqa: E402
from electric_auth_test.postgres import Cluster, postgres_command  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402
import stats_bench  # noqa: E402  (this directory: on-CPU time per call, the ratio statistics)

NAME = os.environ.get("REVOCATION_BENCH_NAME", "ea-bench-revoked")
UNREVOKED_NAME = NAME.replace("revoked", "unrevoked") if "revoked" in NAME else f"{NAME}-unrevoked"
PORT = int(os.environ.get("REVOCATION_BENCH_PORT", "54378"))  # the unrevoked cluster: PORT + 1
# 100,000 entries less room for the pgbench run's revocation: electric_auth.max_revocations at
# its default (100,000) refuses the 100,001st, so the list is as full as the default allows.
REVOKED = int(os.environ.get("REVOCATION_BENCH_REVOKED", "99990"))
ROUNDS = {"HS256": int(os.environ.get("REVOCATION_BENCH_ROUNDS", "61")),
          "ES256": int(os.environ.get("REVOCATION_BENCH_ROUNDS_ASYM", "21"))}
TOKENS = {"HS256": 20000, "ES256": 5000}
CLIENTS = 32
SECONDS = 5
REVOKE_AT = 2.0  # seconds into the pgbench run
HS_SECRET = "revocation-bench-secret-2f8a6c4e0b9d17a3c5e2f4b6d8a0c1e3"
LIMIT_US = 0.05  # at most this much more per call with the list full
NOISE_LIMIT = 1.03  # within noise: the ratio's interval holds 1 or ends at or below this
REFUSED = ("28000", "Token has been revoked")
HEADING = "## Revocation (`electric_auth.revoke_token`, bench/revocation_bench.py)"


def refusal(conn, token):
    """("ok", user id) or (sqlstate, message) of user_id(token) in `conn`."""
    try:
        return ("ok", conn.execute("SELECT electric_auth.user_id(%s)", (token,)).fetchone()[0])
    except psycopg.Error as e:
        return (e.sqlstate, e.diag.message_primary)


def load(conn, table, tokens):
    """Table `table` (id, t) holding `tokens` (a list; ids from 1), COPY-loaded."""
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, t text)")
    with conn.cursor().copy(f"COPY {table} (id, t) FROM STDIN") as copy:
        for i, token in enumerate(tokens, 1):
            copy.write_row((i, token))
    conn.execute(f"VACUUM ANALYZE {table}")


def revoke_all(conn):
    """Revokes every token of revoke_me in one transaction, as the superuser: (the count the
    statement returned, seconds it took, the entries electric_auth.revocations lists, by kind)."""
    stats_bench.configure(conn, "HS256", HS_SECRET)
    start = time.perf_counter()
    count = conn.execute("SELECT count(electric_auth.revoke_token(t)) FROM revoke_me"
                         ).fetchone()[0]  # autocommit: one statement, one transaction
    took = time.perf_counter() - start
    listed = conn.execute("SELECT count(*) FROM electric_auth.revocations").fetchone()[0]
    kinds = dict(conn.execute("SELECT kind, count(*) FROM electric_auth.revocations "
                              "GROUP BY kind ORDER BY kind").fetchall())
    size = int(conn.execute("SHOW electric_auth.max_revocations").fetchone()[0])
    return count, took, listed, kinds, size


def interleaved(conns, alg, verifying, rounds):
    """`rounds` rounds of one scan in each cluster's backend (`conns`: name -> connection),
    side by side, alternating which goes first. The fastest on-CPU µs per call of each, and the
    medians of the per-round differences (revoked − unrevoked, on-CPU µs per call) and ratios
    (revoked / unrevoked, on-CPU and wall), with 95% intervals."""
    scan = f"SELECT count(electric_auth.user_id(t)) FROM tokens_{alg}"
    n = TOKENS[alg]
    for conn in conns.values():
        stats_bench.configure(conn, alg, verifying)
        assert conn.execute(scan).fetchone()[0] == n  # warm-up, outside the timing
    runs = {"revoked": [], "unrevoked": []}
    for round_ in range(rounds):
        for name in (("revoked", "unrevoked") if round_ % 2 == 0 else ("unrevoked", "revoked")):
            # track=True: counting stays on (the default), as in production.
            runs[name].append(stats_bench.per_call(conns[name], scan, n, True))
    revoked, unrevoked = runs["revoked"], runs["unrevoked"]
    return {"revoked": min(c for _, c in revoked), "unrevoked": min(c for _, c in unrevoked),
            **stats_bench.compare(revoked, unrevoked), "rounds": rounds, "n": n}


def pgbench_with_revocation(cluster):
    """pgbench on `cluster` (CLIENTS clients, SECONDS s, -M prepared), each transaction user_id
    of a random token of tokens_HS256 among ids 1 .. n-1, while another connection revokes
    token n REVOKE_AT s into the run (committed). Returns what it saw."""
    n = TOKENS["HS256"]
    cluster.alter_system("electric_auth.jwt_alg", "HS256")
    cluster.alter_system("electric_auth.jwt_key", HS_SECRET)
    script = scratch_dir(f"{cluster.name}-pgbench.sql")
    script.write_text(f"\\set i random(1, {n - 1})\n"
                      "SELECT electric_auth.user_id(t) FROM tokens_HS256 WHERE id = :i;\n")
    script.chmod(0o644)
    result = {}
    with cluster.connect() as revoker, cluster.connect() as holder:
        token = revoker.execute("SELECT t FROM tokens_HS256 WHERE id = %s", (n,)).fetchone()[0]
        result["before"] = refusal(holder, token)  # a session opened before the revocation
        proc = subprocess.Popen(
            postgres_command(cluster.bin / "pgbench", "-n", "-h", cluster.sock, "-p",
                             cluster.port, "-U", "postgres", "-c", str(CLIENTS), "-j", "2",
                             "-T", str(SECONDS), "-P", "1", "-M", "prepared", "-f", script,
                             "postgres"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        started = time.perf_counter()
        time.sleep(REVOKE_AT)
        sent = time.perf_counter()
        try:
            revoker.execute("SELECT electric_auth.revoke_token(%s)", (token,))  # autocommit
            result["revoke_error"] = None
        except psycopg.Error as e:  # reported, and the target not met
            result["revoke_error"] = f"{e.sqlstate} {e.diag.message_primary}"
        committed = time.perf_counter()
        result["holder_after"] = refusal(holder, token)  # at once, no wait
        result["revoked_at"] = sent - started
        result["commit_ms"] = (committed - sent) * 1000
        result["during_run"] = proc.poll() is None
        out, err = proc.communicate(timeout=SECONDS + 120)
    result["returncode"] = proc.returncode
    failed = re.search(r"number of failed transactions: (\d+)", out)
    result["failed"] = int(failed[1]) if failed else None
    processed = re.search(r"number of transactions actually processed: (\d+)", out)
    result["processed"] = int(processed[1]) if processed else None
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    result["tps"] = float(tps[1]) if tps else None
    result["aborted"] = len(re.findall(r"client \d+ aborted", err))
    result["progress"] = [float(t) for t in re.findall(r"progress: [0-9.]+ s, ([0-9.]+) tps", err)]
    result["errors"] = [line for line in err.splitlines()
                        if not line.startswith("progress:") and line.strip()][:5]
    with cluster.connect() as fresh:
        result["fresh_after"] = refusal(fresh, token)
        result["listed"] = fresh.execute("SELECT count(*) FROM electric_auth.revocations"
                                         ).fetchone()[0]
    return result


def run(pg_config=None):
    """Measures and returns the BENCHMARKS.md section (markdown)."""
    pg_config = pg_config or os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
    keys = stats_bench.keys()
    keys["HS256"] = (HS_SECRET, HS_SECRET)
    print(f"revocation bench: minting {REVOKED} tokens to revoke and the measured tables ...",
          flush=True)
    hs = Minter(HS_SECRET, "HS256", lifetime=86400)
    to_revoke = [hs(f"revoked-{i}") for i in range(1, REVOKED + 1)]
    measured = {alg: [Minter(keys[alg][0], alg, lifetime=86400)(f"user-{i}")
                      for i in range(1, count + 1)] for alg, count in TOKENS.items()}
    clusters = {"revoked": Cluster(NAME, PORT, config=pg_config),
                "unrevoked": Cluster(UNREVOKED_NAME, PORT + 1, config=pg_config)}
    try:
        conns = {}
        for name, cluster in clusters.items():
            cluster.fresh()
            conn = conns[name] = cluster.connect()
            conn.execute("CREATE EXTENSION electric_auth")
            for alg, tokens in measured.items():
                load(conn, f"tokens_{alg}", tokens)
        revoked, unrevoked = conns["revoked"], conns["unrevoked"]
        load(revoked, "revoke_me", to_revoke)
        print(f"revocation bench: revoking {REVOKED} tokens in one transaction ...", flush=True)
        count, took, listed, kinds, size = revoke_all(revoked)
        print(f"revocation bench: revoke_token counted {count}, took {took:.2f} s; "
              f"electric_auth.revocations lists {listed} ({kinds})", flush=True)
        if listed != REVOKED:
            raise AssertionError(f"electric_auth.revocations lists {listed}, not {REVOKED}")
        with clusters["unrevoked"].connect() as other:
            empty = other.execute("SELECT count(*) FROM electric_auth.revocations").fetchone()[0]
        if empty != 0:
            raise AssertionError(f"the unrevoked cluster lists {empty} revocations")
        # Sanity: a revoked token refused where it was revoked and verifying where it was not;
        # every measured table's first token verifying in both.
        stats_bench.configure(unrevoked, "HS256", HS_SECRET)
        sanity = {"revoked token, revoked cluster": refusal(revoked, to_revoke[0]),
                  "revoked token, unrevoked cluster": refusal(unrevoked, to_revoke[0])}
        for alg in TOKENS:
            for name, conn in conns.items():
                stats_bench.configure(conn, alg, keys[alg][1])
                sanity[f"{alg} token 1, {name} cluster"] = refusal(conn, measured[alg][0])
        for what, outcome in sanity.items():
            print(f"revocation bench: sanity: {what}: {outcome}", flush=True)
        expected = {"revoked token, revoked cluster": REFUSED,
                    "revoked token, unrevoked cluster": ("ok", "revoked-1"),
                    **{f"{alg} token 1, {name} cluster": ("ok", "user-1")
                       for alg in TOKENS for name in conns}}
        if sanity != expected:
            raise AssertionError(f"sanity checks: {sanity}, expected {expected}")
        rows = {}
        for alg in TOKENS:
            print(f"revocation bench: {alg} user_id, {REVOKED} revoked and none, "
                  f"{ROUNDS[alg]} rounds ...", flush=True)
            rows[alg] = interleaved(conns, alg, keys[alg][1], ROUNDS[alg])
            print(f"revocation bench: {alg}: {rows[alg]}", flush=True)
        for conn in conns.values():
            conn.close()
        print(f"revocation bench: pgbench {CLIENTS} clients, one revocation "
              f"{REVOKE_AT:.0f} s in ...", flush=True)
        bench = pgbench_with_revocation(clusters["revoked"])
        print(f"revocation bench: pgbench: {bench}", flush=True)
        setup = {"count": count, "took": took, "listed": listed, "kinds": kinds, "size": size}
        return render(rows, sanity, setup, bench, clusters["revoked"].major)
    finally:
        for cluster in clusters.values():
            cluster.stop()


def render(rows, sanity, setup, bench, major):
    span = lambda i, f="{:.3f}": f"{f.format(i[0])} – {f.format(i[1])}"  # noqa: E731
    shown = lambda o: f"`{o[1]}`" if o[0] == "ok" else f"{o[0]} `{o[1]}`"  # noqa: E731
    kinds = ", ".join(f"{v:,} of kind `{k}`" for k, v in setup["kinds"].items())
    lines = [HEADING, "",
             f"PostgreSQL {major}, this machine, two preloaded clusters of the same server side "
             f"by side; {time.strftime('%Y-%m-%d', time.gmtime())}. *revoked*: "
             f"{REVOKED:,} distinct HS256 tokens of other users revoked by the superuser in one "
             "transaction (`SELECT count(electric_auth.revoke_token(t)) FROM revoke_me`: "
             f"{setup['count']:,} counted, {setup['took']:.1f} s; `electric_auth.revocations` "
             f"then lists {setup['listed']:,}: {kinds}; `electric_auth.max_revocations` = "
             f"{setup['size']:,}, so the list is as full as it may be but for the pgbench run's "
             "revocation below); *unrevoked*: nothing revoked. Both hold the same tables of "
             "distinct PyJWT tokens (none revoked) and the same settings. `SELECT "
             "count(electric_auth.user_id(t))` over them, in rounds of one scan in each "
             "cluster's backend side by side, alternating which goes first. Times are the "
             "backend's on-CPU time (`/proc/PID/schedstat`) per call; revoked − unrevoked and "
             "revoked / unrevoked are the medians of the per-round figures, with 95% bootstrap "
             "intervals. Rerun: `PG_CONFIG=... python3 bench/revocation_bench.py --write`.", "",
             "| `user_id` | tokens per scan | rounds | revoked (µs/call, fastest) | unrevoked "
             "| revoked − unrevoked (µs/call) | 95% interval | revoked / unrevoked "
             "| 95% interval | revoked / unrevoked, wall |",
             "|---|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for alg, r in rows.items():
        lines.append(f"| {alg} | {r['n']} | {r['rounds']} | {r['revoked']:.3f} | "
                     f"{r['unrevoked']:.3f} | **{r['diff']:+.3f}** | "
                     f"{span(r['diff_interval'], '{:+.3f}')} | **{r['ratio']:.3f}** | "
                     f"{span(r['ratio_interval'])} | {r['wall']:.3f} |")
    lines += ["", "Checked before the timing: "
              + "; ".join(f"{what}: {shown(o)}" for what, o in sanity.items()) + ".", ""]
    progress = ", ".join(f"{t:.0f}" for t in bench["progress"])
    tps = "—" if bench["tps"] is None else f"{bench['tps']:.0f}"
    lines += [f"pgbench on the revoked cluster, {CLIENTS} clients (`-j 2 -T {SECONDS} -M "
              "prepared`), each transaction `SELECT electric_auth.user_id(t) FROM tokens_HS256 "
              f"WHERE id = :i` (a random id of 1 .. {TOKENS['HS256'] - 1}); "
              f"{bench['revoked_at']:.1f} s into the run another connection revoked token "
              f"{TOKENS['HS256']} of the same table (its statement and commit: "
              f"{bench['commit_ms']:.1f} ms; pgbench still running then: "
              f"{'yes' if bench['during_run'] else '**no**'}"
              + (f"; **refused**: {bench['revoke_error']}" if bench["revoke_error"] else "")
              + ").", "",
              "| pgbench | |", "|---|---|",
              f"| transactions processed | {bench['processed']} |",
              f"| failed transactions | **{bench['failed']}** |",
              f"| clients aborted | **{bench['aborted']}** |",
              f"| exit status | {bench['returncode']} |",
              f"| tps (without initial connection time) | {tps} |",
              f"| tps second by second (`-P 1`) | {progress} |",
              f"| the token in a session opened before the revocation: before it, right after "
              f"its commit | {shown(bench['before'])}, {shown(bench['holder_after'])} |",
              f"| the token in a new session after the run | {shown(bench['fresh_after'])} |",
              f"| `electric_auth.revocations` after the run | {bench['listed']:,} entries |"]
    if bench["errors"]:
        lines.append(f"| pgbench's messages | {'; '.join(bench['errors'])} |")
    lines += ["", "Targets:", ""]
    yes = lambda ok: "**yes**" if ok else "**no**"  # noqa: E731
    for alg, r in rows.items():
        high = r["diff_interval"][1]
        lines.append(f"- {alg} `user_id` with {REVOKED:,} entries revoked ≤ {LIMIT_US} µs more "
                     f"per call than with none (upper end of the difference's 95% interval, "
                     f"{high:+.3f} µs): {yes(high <= LIMIT_US)}")
        ok = stats_bench.within_noise(r["ratio_interval"], NOISE_LIMIT)
        lines.append(f"- {alg} `user_id` within noise (the ratio's 95% interval, "
                     f"{span(r['ratio_interval'])}, holds 1 or ends at or below {NOISE_LIMIT}): "
                     f"{yes(ok)}")
    reached = (bench["revoke_error"] is None and bench["failed"] == 0
               and bench["aborted"] == 0 and bench["returncode"] == 0 and bench["during_run"]
               and bench["before"][0] == "ok" and bench["holder_after"] == REFUSED
               and bench["fresh_after"] == REFUSED)
    lines.append(f"- a revocation reaches {CLIENTS} busy backends without a failed transaction "
                 f"(committed during the run; pgbench: {bench['failed']} failed, "
                 f"{bench['aborted']} aborted, exit {bench['returncode']}; the token refused "
                 f"right after the commit in a session opened before it and after the run in a "
                 f"new one): {yes(reached)}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    stats_bench.standalone(run, HEADING, "revocation bench")
