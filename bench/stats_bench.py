"""What counting verifications in electric_auth.stats costs (issue 23), measured side by side
with counting switched off (electric_auth.track_stats = off) in the same run, interleaved:

- HS256 and ES256 `user_id` over tables of distinct PyJWT tokens, in many short rounds of one
  scan with counting on and one with it off side by side (alternating which goes first): the
  median of the per-round ratios of the backend's on-CPU time, with a 95% bootstrap interval;
  HS256 is where counting's share is the largest (the same few instructions per call beside
  the cheapest verification), ES256 shows it beside a signature check;
- ES256 `user_id` of one token REPEAT times in one statement (the verified-token cache answers
  after the first: the cheapest call there is, where counting's share is the largest), likewise;
- pgbench, 32 clients, each transaction `user_id` of a random token of the HS256 table, tps
  and the backends' CPU per transaction with counting on and off, alternating, ROUNDS rounds
  of SECONDS each.

Self-contained: its own preloaded cluster (the counters need shared_preload_libraries) of the
server whose pg_config is $PG_CONFIG (default Debian's 15), named $STATS_BENCH_NAME
(ea-bench-stats) on base port $STATS_BENCH_PORT (54340; tests/lib's Cluster adds 100 per major
above 15), using the electric_auth installed there
(`make install` builds the release library). bench/bench.py appends its section to
BENCHMARKS.md; alone: PG_CONFIG=... python3 bench/stats_bench.py
"""

import os
import pathlib
import random
import re
import statistics
import subprocess
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests/lib"))
from electric_auth_test import ROOT, scratch_dir  # noqa: E402
from electric_auth_test.postgres import Cluster, postgres_command  # noqa: E402
from electric_auth_test.tokens import Minter  # noqa: E402

NAME = os.environ.get("STATS_BENCH_NAME", "ea-bench-stats")
PORT = int(os.environ.get("STATS_BENCH_PORT", "54340"))
# Rounds of on/off pairs per table: many short ones (an HS256 scan takes ~30 ms).
PAIRS = {"HS256": int(os.environ.get("STATS_BENCH_PAIRS", "121")), "ES256": 31}
REPEAT_PAIRS = int(os.environ.get("STATS_BENCH_PAIRS", "121"))
ROUNDS = int(os.environ.get("STATS_BENCH_ROUNDS", "8"))
SECONDS = int(os.environ.get("STATS_BENCH_SECONDS", "5"))
CLIENTS = 32
REPEAT = 50_000
TOKENS = {"HS256": 20000, "ES256": 1000}
HS_SECRET = "stats-bench-secret-5e0c9b1d7a3f48e2b6c4d8a0f1e3b5c7"


def keys():
    """(signing, verifying) per algorithm: the HS secret, a fresh P-256 key pair."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return {"HS256": (HS_SECRET, HS_SECRET), "ES256": (private, public)}


def configure(conn, alg, key):
    conn.execute("SELECT set_config('electric_auth.jwt_alg', %s, false), "
                 "set_config('electric_auth.jwt_key', %s, false)", (alg, key))


def on_cpu_ns(pid):
    """Nanoseconds process `pid` has run on a CPU (/proc/PID/schedstat): unlike the wall clock,
    it does not count the time a shared machine's other work (or the hypervisor) took."""
    return int(pathlib.Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def per_call(conn, sql, n, track):
    """(wall µs, backend on-CPU µs) per call of `sql` (n calls), counting on or off."""
    conn.execute(f"SET electric_auth.track_stats = {'on' if track else 'off'}")
    conn.execute("SET electric_auth.clock_drift = 2")  # same value: drops the token cache
    pid = conn.info.backend_pid
    cpu, start = on_cpu_ns(pid), time.perf_counter()
    conn.execute(sql).fetchone()
    wall, cpu = time.perf_counter() - start, on_cpu_ns(pid) - cpu
    return wall * 1e6 / n, cpu / 1e3 / n


def interval(ratios, seed=23):
    """A 95% bootstrap interval of the median of `ratios` (2,000 resamples, fixed seed)."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios)))
                     for _ in range(2000))
    return medians[50], medians[1949]


def within_noise(interval_, limit):
    """Whether a ratio's 95% interval holds 1 (no difference measurable above the noise) or
    ends at or below `limit` (a difference shown to be at most that)."""
    low, high = interval_
    return low <= 1.0 <= high or high <= limit


def compare(after, before):
    """Round by round, `after` against `before` (lists of (wall µs, on-CPU µs) per call, one
    of each per round): the medians of the on-CPU differences and ratios with their 95%
    intervals, and the median wall-clock ratio."""
    diffs = [a[1] - b[1] for a, b in zip(after, before)]
    ratios = [a[1] / b[1] for a, b in zip(after, before)]
    return {"diff": statistics.median(diffs), "diff_interval": interval(diffs),
            "ratio": statistics.median(ratios), "ratio_interval": interval(ratios),
            "wall": statistics.median(a[0] / b[0] for a, b in zip(after, before))}


def write_section(heading, section):
    """Replaces the BENCHMARKS.md section that starts with `heading` (up to the next `## `)
    with `section`, or adds it at the end."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if heading in text:
        before, rest = text.split(heading, 1)
        after = re.search(r"\n## ", rest)
        text = before + section + ("\n" + rest[after.start() + 1:] if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def standalone(run, heading, label):
    """A bench's own entry point: print its section; with --write, replace it in
    BENCHMARKS.md."""
    report = run()
    print(report)
    if "--write" in sys.argv[1:]:
        write_section(heading, report)
        print(f"{label}: wrote its section of BENCHMARKS.md")


def interleaved(conn, sql, n, pairs):
    """`pairs` rounds of one run with counting on and one with it off, side by side, alternating
    which goes first: the fastest of each, and the median of the per-round ratios on / off with
    its 95% interval, for the wall clock and for the backend's on-CPU time (a round's two runs
    a few milliseconds apart, so that a machine that slows down for a while weighs on both
    alike; many short rounds, so that the median is tight)."""
    on, off = [], []
    for run in range(pairs):
        for track in ((True, False) if run % 2 == 0 else (False, True)):
            (on if track else off).append(per_call(conn, sql, n, track))
    walls = [a[0] / b[0] for a, b in zip(on, off)]
    cpus = [a[1] / b[1] for a, b in zip(on, off)]
    return {"on": min(w for w, _ in on), "off": min(w for w, _ in off),
            "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "cpu_interval": interval(cpus), "pairs": pairs}


def pgbench(cluster, track):
    """tps of CLIENTS clients for SECONDS, each transaction one user_id() of a random token."""
    script = scratch_dir(f"{cluster.name}-pgbench.sql")
    script.write_text(f"\\set i random(1, {TOKENS['HS256']})\n"
                      "SELECT electric_auth.user_id(t) FROM tokens_HS256 WHERE id = :i;\n")
    script.chmod(0o644)
    env = dict(os.environ, PGOPTIONS=f"-c electric_auth.track_stats={'on' if track else 'off'}")
    out = subprocess.run(
        postgres_command(cluster.bin / "pgbench", "-n", "-h", cluster.sock,
                         "-p", cluster.port, "-U", "postgres", "-c", str(CLIENTS), "-j", "2", "-T", str(SECONDS),
         "-M", "prepared", "-f", script, "postgres"),
        capture_output=True, text=True, env=env, check=True, cwd="/").stdout
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)[1])
    return tps, int(re.search(r"number of transactions actually processed: (\d+)", out)[1])


def children_cpu_s(cluster):
    """CPU seconds of the postmaster's exited children (cutime + cstime of /proc/PID/stat): the
    backends of a pgbench run, once it has ended and they are reaped."""
    pm = int((cluster.data / "postmaster.pid").read_text().split()[0])
    fields = pathlib.Path(f"/proc/{pm}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def pgbench_round(cluster, track):
    """(tps, the backends' CPU ms per 1,000 transactions) of one pgbench run."""
    before = children_cpu_s(cluster)
    tps, transactions = pgbench(cluster, track)
    time.sleep(0.5)  # the postmaster reaps the run's backends
    return tps, (children_cpu_s(cluster) - before) * 1e6 / transactions


def run(pg_config=None):
    """Measures and returns the BENCHMARKS.md section (markdown)."""
    pg_config = pg_config or os.environ.get("PG_CONFIG", "/usr/bin/pg_config")
    signing_keys = keys()
    # Preloaded: the counters need shared_preload_libraries.
    cluster = Cluster(NAME, PORT, config=pg_config).fresh()
    try:
        with cluster.connect() as conn:
            conn.execute("CREATE EXTENSION electric_auth")
            rows = []
            for alg, count in TOKENS.items():
                print(f"stats bench: {alg} user_id, counting on and off ...", flush=True)
                signing, verifying = signing_keys[alg]
                mint = Minter(signing, alg, lifetime=86400)
                conn.execute(f"CREATE TABLE tokens_{alg} (id int PRIMARY KEY, t text)")
                with conn.cursor().copy(f"COPY tokens_{alg} (id, t) FROM STDIN") as copy:
                    for i in range(1, count + 1):
                        copy.write_row((i, mint(f"user-{i}")))
                conn.execute(f"VACUUM ANALYZE tokens_{alg}")
                configure(conn, alg, verifying)
                row = interleaved(conn, f"SELECT count(electric_auth.user_id(t)) FROM tokens_{alg}",
                                  count, PAIRS[alg])
                rows.append((f"{alg}, distinct tokens", count, row))
            print("stats bench: ES256 user_id of one token again (cache hits), counting on and "
                  "off ...", flush=True)
            configure(conn, "ES256", signing_keys["ES256"][1])
            row = interleaved(
                conn, "SELECT count(electric_auth.user_id(t)) FROM "
                      f"(SELECT t FROM tokens_ES256 LIMIT 1) one, generate_series(1, {REPEAT})",
                REPEAT, REPEAT_PAIRS)
            rows.append(("ES256, one token again (cache hits: the cheapest call)", REPEAT, row))
        cluster.alter_system("electric_auth.jwt_alg", "HS256")
        cluster.alter_system("electric_auth.jwt_key", HS_SECRET)
        tps = {True: [], False: []}
        for round_ in range(ROUNDS):
            for track in ((True, False) if round_ % 2 == 0 else (False, True)):
                print(f"stats bench: pgbench {CLIENTS} clients, counting "
                      f"{'on' if track else 'off'} ...", flush=True)
                tps[track].append(pgbench_round(cluster, track))
        with cluster.connect() as conn:
            counted = conn.execute("SELECT sum(count) FROM electric_auth.stats "
                                   "WHERE entry_point = 'user_id'").fetchone()[0]
    finally:
        cluster.stop()
    return render(rows, tps, counted)


def render(rows, tps, counted):
    lines = ["## What counting costs (`electric_auth.stats`)", "",
             "Run by bench/stats_bench.py on a preloaded cluster: `user_id` over distinct PyJWT "
             "tokens with `electric_auth.track_stats` on and off, in many short rounds of one "
             "scan each way side by side (alternating which goes first); then pgbench, "
             f"{CLIENTS} clients, `-T {SECONDS}`, {ROUNDS} rounds each way, alternating. On / off "
             "is the median of the per-round ratios, with its 95% bootstrap interval. "
             f"{time.strftime('%Y-%m-%d', time.gmtime())}.", "",
             "The backend's on-CPU time (`/proc/PID/schedstat`; for pgbench, the CPU time of the "
             "run's backends, `cutime + cstime` of the postmaster) counts only what the backends "
             "ran, not what the shared machine or the hypervisor took from them: it is the "
             "measure of what counting costs; the wall clock beside it shows the noise.", "",
             "| `user_id` | calls per scan | rounds | counting on (µs/call, fastest) | off | "
             "on / off, wall | on / off, on-CPU time | 95% interval (on-CPU) |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, count, r in rows:
        low, high = r["cpu_interval"]
        lines.append(f"| {name} | {count} | {r['pairs']} | {r['on']:.3f} | {r['off']:.3f} | "
                     f"{r['wall']:.3f} | **{r['cpu']:.3f}** | {low:.3f}–{high:.3f} |")
    on = statistics.median(t for t, _ in tps[True])
    off = statistics.median(t for t, _ in tps[False])
    ratio = statistics.median(a[0] / b[0] for a, b in zip(tps[True], tps[False]))
    cpus = [a[1] / b[1] for a, b in zip(tps[True], tps[False])]
    low, high = interval(cpus)
    runs = lambda track: ", ".join(f"{t:.0f} ({c:.1f})" for t, c in tps[track])  # noqa: E731
    lines += ["", "| pgbench, 32 clients | tps (median) | runs: tps (backend CPU ms per 1,000 "
              "transactions) |", "|---|---:|---|",
              f"| counting on | {on:.0f} | {runs(True)} |",
              f"| counting off | {off:.0f} | {runs(False)} |",
              f"| on / off, tps | {ratio:.3f} | |",
              f"| on / off, backend CPU per transaction | **{statistics.median(cpus):.3f}** "
              f"| 95% interval {low:.3f}–{high:.3f} |", "",
              f"The cluster counted {counted} `user_id` verifications in all.", ""]
    intervals = [r["cpu_interval"] for _, _, r in rows] + [(low, high)]
    met = all(within_noise(i, 1.02) for i in intervals)
    lines += ["Target (within noise, at most 2%): for every row above and pgbench, the on-CPU "
              "ratio's 95% interval either holds 1 (no cost measurable above the noise) or ends "
              f"at or below 1.02 (a cost shown to be at most 2%): {'**met**' if met else '**not met**'}"
              f" ({', '.join(f'{a:.3f}–{b:.3f}' for a, b in intervals)}).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
