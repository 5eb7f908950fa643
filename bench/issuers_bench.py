"""What several issuers cost (`electric_auth.issuers`, issue 32), measured side by side with the
single-issuer settings in the same run, interleaved:

- `single`: `electric_auth.issuers` empty, the session's `electric_auth.jwt_alg` and
  `electric_auth.jwt_key` set to the table's algorithm and key (secure mode, `iss` not checked);
- `eight`: `electric_auth.issuers` holding 8 entries (HS256 with secrets of their own, RS256 and
  ES256 with PEM keys of their own), the 5th (ISS) with the table's algorithm and key, so that
  the selection by the token's `iss` walks past four others; the session's jwt_alg/jwt_key
  RESET (no default issuer);
- HS256, RS256 (RSA 2048) and ES256 (P-256) `user_id` over tables of distinct PyJWT tokens, all
  with `"iss": ISS`, in many short rounds of one scan under each configuration side by side
  (alternating which goes first). Before every timed scan, outside the timing, the
  configuration is switched (ALTER SYSTEM, pg_reload_conf(), then the measuring connection
  polled until it has applied the reload and shows the new value) and one token verified under
  it (the backend rebuilds its verifier for the new settings there, not in the timed scan).
  Per round, the backend's on-CPU µs per call (/proc/PID/schedstat) under each; reported: the
  fastest of each, the median of the per-round differences eight − single and of the ratios
  eight / single, each with a 95% bootstrap interval (bench/stats_bench.py's statistics).

Targets (issue 32): HS256 at most 0.1 µs more per call with 8 issuers (the difference's 95%
interval ends at or below 0.1 µs); RS256 and ES256 within noise (the ratio's 95% interval holds
1 or ends at or below 1.03).

Self-contained: its own preloaded cluster of the server whose pg_config is $PG_CONFIG (default
Debian's 15), named $ISSUERS_BENCH_NAME (ea-bench-issuers) on base port $ISSUERS_BENCH_PORT
(54357; tests/lib's Cluster adds 100 per major above 15), using the electric_auth installed there
(`make install` builds the release library). Rounds: $ISSUERS_BENCH_ROUNDS (HS256, default 41),
$ISSUERS_BENCH_ROUNDS_ASYM (RS256, ES256, default 21). bench/bench.py appends its section to
BENCHMARKS.md; alone: PG_CONFIG=... python3 bench/issuers_bench.py [--write] (--write replaces
its section in BENCHMARKS.md).
"""

import json
import os
import pathlib
import sys
import time

from psycopg import sql
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests/lib"))
from electric_auth_test.postgres import Cluster  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402
import stats_bench  # noqa: E402  (this directory: on-CPU time per call, the ratio statistics)

NAME = os.environ.get("ISSUERS_BENCH_NAME", "ea-bench-issuers")
PORT = int(os.environ.get("ISSUERS_BENCH_PORT", "54357"))
HS_ROUNDS = int(os.environ.get("ISSUERS_BENCH_ROUNDS", "41"))
ASYM_ROUNDS = int(os.environ.get("ISSUERS_BENCH_ROUNDS_ASYM", "21"))
ROUNDS = {"HS256": HS_ROUNDS, "RS256": ASYM_ROUNDS, "ES256": ASYM_ROUNDS}
TOKENS = {"HS256": 20000, "RS256": 5000, "ES256": 5000}
HS_SECRET = "issuers-bench-secret-7d2b9e4f1a6c83d05b7e9a2c4f6d8b1e"
ISSUERS = 8
POSITION = 4  # ISS is the 5th entry: the selection walks past four others
ISS = f"https://issuer-{POSITION}.bench.example"
HS_LIMIT_US = 0.1  # HS256: at most this much more per call with 8 issuers
NOISE_LIMIT = 1.03  # RS256, ES256: within noise (the ratio's interval holds 1 or ends below)
HEADING = "## Several issuers (`electric_auth.issuers`, bench/issuers_bench.py)"


def pem(private):
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_key(alg):
    """(signing, verifying) for `alg`: an HS secret of its own, or a fresh key pair."""
    if alg == "HS256":
        secret = os.urandom(24).hex()
        return secret, secret
    private = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == "RS256"
               else ec.generate_private_key(ec.SECP256R1()))
    return private, pem(private)


def issuers_value(alg, verifying):
    """electric_auth.issuers' JSON text: 8 entries, the 5th ISS with `alg` and `verifying` (the
    key of the table measured); the seven others the same whatever is measured (see OTHERS)."""
    entries = [{"iss": iss, "key": key, "alg": other_alg} for iss, other_alg, key in OTHERS]
    entries.insert(POSITION, {"iss": ISS, "key": verifying, "alg": alg})
    assert len(entries) == ISSUERS and entries[POSITION]["iss"] == ISS
    return json.dumps(entries)


# The seven other issuers, in order (ISS goes between the 4th and the 5th of them): HS256 with
# secrets of their own, RS256 and ES256 with public keys of their own.
OTHERS = [(f"https://issuer-{i}.bench.example", alg, new_key(alg)[1])
          for i, alg in zip((0, 1, 2, 3, 5, 6, 7),
                            ("HS256", "RS256", "ES256", "HS256", "RS256", "ES256", "HS256"))]


def switch(conn, value):
    """Puts electric_auth.issuers = `value` ("" resets it) into force in `conn`'s backend:
    ALTER SYSTEM, pg_reload_conf(), then polls until this backend has re-read its configuration
    since (pg_conf_load_time moved) and shows the value."""
    before = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
    if value:
        literal = sql.Literal(value).as_string(conn)
        conn.execute(f"ALTER SYSTEM SET electric_auth.issuers = {literal}")
    else:
        conn.execute("ALTER SYSTEM RESET electric_auth.issuers")
    conn.execute("SELECT pg_reload_conf()")
    for _ in range(1000):
        loaded, shown = conn.execute(
            "SELECT pg_conf_load_time(), current_setting('electric_auth.issuers')").fetchone()
        if loaded > before and shown == value:
            return
        time.sleep(0.005)
    raise AssertionError(f"electric_auth.issuers never came into force (shows {shown!r})")


def configure(conn, config, alg, verifying):
    """Puts configuration `config` ("single" or "eight") for `alg`'s table into force."""
    if config == "single":
        switch(conn, "")
        stats_bench.configure(conn, alg, verifying)
    else:
        switch(conn, issuers_value(alg, verifying))
        conn.execute("RESET electric_auth.jwt_alg")
        conn.execute("RESET electric_auth.jwt_key")


def expected_user_id(config, sub):
    return f"{ISS}#{sub}" if config == "eight" else sub


def first_user_id(conn, alg):
    """user_id of the table's first token: raises (and so stops the bench) if it is refused."""
    return conn.execute(f"SELECT electric_auth.user_id(t) FROM tokens_{alg} WHERE id = 1"
                        ).fetchone()[0]


def interleaved(conn, alg, verifying, rounds):
    """`rounds` rounds of one scan under each configuration, side by side, alternating which
    goes first; each scan after a switch to its configuration and one verification under it
    (checked), outside the timing. The fastest on-CPU µs per call of each, and the medians of
    the per-round differences (eight − single, on-CPU µs per call) and ratios (eight / single,
    on-CPU and wall), with 95% intervals."""
    scan = f"SELECT count(electric_auth.user_id(t)) FROM tokens_{alg}"
    n = TOKENS[alg]
    runs = {"single": [], "eight": []}
    for round_ in range(rounds):
        for config in (("single", "eight") if round_ % 2 == 0 else ("eight", "single")):
            configure(conn, config, alg, verifying)
            uid = first_user_id(conn, alg)  # the verifier rebuilt for the new settings here
            assert uid == expected_user_id(config, "user-1"), (alg, config, uid)
            # track=True: counting stays on (the default), as in production.
            runs[config].append(stats_bench.per_call(conn, scan, n, True))
    single, eight = runs["single"], runs["eight"]
    return {"single": min(c for _, c in single), "eight": min(c for _, c in eight),
            **stats_bench.compare(eight, single), "rounds": rounds, "n": n}


def run(pg_config=None):
    """Measures and returns the BENCHMARKS.md section (markdown)."""
    pg_config = pg_config or os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
    keys = {alg: new_key(alg) for alg in TOKENS}
    keys["HS256"] = (HS_SECRET, HS_SECRET)
    cluster = Cluster(NAME, PORT, config=pg_config).fresh()
    try:
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION electric_auth")
            conn.execute("LOAD 'electric_auth'")
            for alg, count in TOKENS.items():
                print(f"issuers bench: {count} {alg} tokens with iss {ISS} ...", flush=True)
                mint = Minter(keys[alg][0], alg, lifetime=86400, iss=ISS)
                conn.execute(f"CREATE TABLE tokens_{alg} (id int PRIMARY KEY, t text)")
                with conn.cursor().copy(f"COPY tokens_{alg} (id, t) FROM STDIN") as copy:
                    for i in range(1, count + 1):
                        copy.write_row((i, mint(f"user-{i}")))
                conn.execute(f"VACUUM ANALYZE tokens_{alg}")
            sanity = []
            for alg in TOKENS:
                for config in ("single", "eight"):
                    configure(conn, config, alg, keys[alg][1])
                    uid = first_user_id(conn, alg)
                    print(f"issuers bench: sanity: {alg} token 1 under {config}: user_id "
                          f"{uid!r}", flush=True)
                    if uid != expected_user_id(config, "user-1"):
                        raise AssertionError(f"{alg} under {config}: user_id {uid!r}, expected "
                                             f"{expected_user_id(config, 'user-1')!r}")
                    sanity.append((alg, config, uid))
            rows = {}
            for alg in TOKENS:
                print(f"issuers bench: {alg} user_id, single issuer and 8 issuers, "
                      f"{ROUNDS[alg]} rounds ...", flush=True)
                rows[alg] = interleaved(conn, alg, keys[alg][1], ROUNDS[alg])
            switch(conn, "")
        return render(rows, sanity, cluster.major)
    finally:
        cluster.stop()


def render(rows, sanity, major):
    span = lambda i, f="{:.3f}": f"{f.format(i[0])} – {f.format(i[1])}"  # noqa: E731
    lines = [HEADING, "",
             f"PostgreSQL {major}, this machine, a preloaded cluster; "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}. `SELECT count(electric_auth.user_id(t))` "
             f"over distinct PyJWT tokens, all with `\"iss\": \"{ISS}\"`, under two "
             "configurations: *single*, `electric_auth.issuers` empty and the session's "
             "`jwt_alg`/`jwt_key` holding the table's algorithm and key; *eight*, "
             f"`electric_auth.issuers` holding {ISSUERS} entries (HS256, RS256 and ES256, each "
             f"with keys of its own), the token's issuer the {POSITION + 1}th, with the table's "
             "key, and no default issuer. Rounds of one scan under each side by side, "
             "alternating which goes first; before each scan, outside the timing, the "
             "configuration is switched (ALTER SYSTEM, pg_reload_conf(), the connection polled "
             "until it shows the new value) and one token verified. Times are the backend's "
             "on-CPU time (`/proc/PID/schedstat`) per call; eight − single and eight / single "
             "are the medians of the per-round figures, with 95% bootstrap intervals. Rerun: "
             "`PG_CONFIG=... python3 bench/issuers_bench.py --write`.", "",
             "| `user_id` | tokens per scan | rounds | single (µs/call, fastest) | eight "
             "| eight − single (µs/call) | 95% interval | eight / single | 95% interval "
             "| eight / single, wall |",
             "|---|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for alg, r in rows.items():
        lines.append(f"| {alg} | {r['n']} | {r['rounds']} | {r['single']:.3f} | "
                     f"{r['eight']:.3f} | **{r['diff']:+.3f}** | "
                     f"{span(r['diff_interval'], '{:+.3f}')} | **{r['ratio']:.3f}** | "
                     f"{span(r['ratio_interval'])} | {r['wall']:.3f} |")
    shown = "; ".join(f"{alg} {config} `{uid}`" for alg, config, uid in sanity
                      if alg == "HS256")
    lines += ["", f"User ids of the first token (every table alike): {shown}.", "", "Targets:",
              ""]
    yes = lambda ok: "**yes**" if ok else "**no**"  # noqa: E731
    hs = rows["HS256"]
    high = hs["diff_interval"][1]
    lines.append(f"- HS256 with {ISSUERS} issuers ≤ {HS_LIMIT_US} µs more per call than with the "
                 f"single-issuer settings (upper end of the difference's 95% interval, "
                 f"{high:+.3f} µs): {yes(high <= HS_LIMIT_US)}")
    for alg in ("RS256", "ES256"):
        r = rows[alg]
        ok = stats_bench.within_noise(r["ratio_interval"], NOISE_LIMIT)
        lines.append(f"- {alg} within noise (the ratio's 95% interval, {span(r['ratio_interval'])}"
                     f", holds 1 or ends at or below {NOISE_LIMIT}): {yes(ok)}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    stats_bench.standalone(run, HEADING, "issuers bench")
