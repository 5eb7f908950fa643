#!/usr/bin/env python3
"""`make test`'s layers, side by side where they can be (issue 31: the same tests in half the
time). Two lanes:

- the build lane runs every compile, one at a time and `nice`d (cargo already uses both cores):
  each major's `cargo pgrx test` (its #[pg_test]s) and install, the core's tests, clippy, the
  release package, the fuzzer, the upgrade test (which builds 0.1.0);
- the suite lane runs the suites that need an installed major — pg_regress, every
  tests/security/test_*.py, the hot standby, PgBouncer, the demo, OAuth on 18 — up to
  `--suites N` at a time (default 4), as soon as their major is installed. They mostly wait on
  servers and sockets; each has clusters, ports and scratch directories of its own
  (tests/lib/electric_auth_test), so any two can run at once.

Jobs that share an installation wait for each other: the upgrade test replaces Postgres 15's
library (0.1.0, then this version again), and the .deb test installs and removes the package in
Debian's Postgres 15, so both come after every Postgres 15 suite, one after the other.

Each job writes target/test-logs/JOB.log. The first failure stops everything: the jobs running
are stopped and the failed job's log tail is printed. At the end, a table of each job's wall
time (the README's breakdown comes from it).

    python3 scripts/test_all.py [MAJOR...]          (default: every supported major)
    python3 scripts/test_all.py --suites 2 17       (fewer suites at once)
"""

import argparse
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOGS = ROOT / "target" / "test-logs"


def pg_config_for(major):
    return subprocess.run(["bash", "-c", 'source scripts/pg_versions.sh && pg_config_for "$1"',
                           "-", str(major)], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


class Job:
    def __init__(self, name, command, lane, after=(), env=None):
        self.name, self.command, self.lane = name, command, lane
        self.after, self.env = set(after), env or {}
        self.process = self.started = self.ended = self.status = None

    @property
    def log(self):
        return LOGS / f"{self.name}.log"


def jobs_for(majors):
    tmp = os.environ.get("EA_TEST_TMP", "/tmp")
    jobs, builds = [], []
    nice = ["nice", "-n", "10"]
    for major in majors:
        config = pg_config_for(major)
        build = f"build-{major}"
        script = (f"rm -rf {tmp}/ea-pgdata-{major} && "
                  f"cargo pgrx test pg{major} --runas postgres --pgdata {tmp}/ea-pgdata-{major} && "
                  f"cargo pgrx install --pg-config {config} >/dev/null && "
                  f"bash tests/symbols/check_symbols.sh \"$({config} --pkglibdir)/electric_auth.so\"")
        jobs.append(Job(build, nice + ["bash", "-c", script], "build"))
        builds.append(build)
        env = {"PG_CONFIG": config}
        suites = [("regress", ["bash", "scripts/pg_regress.sh"])]
        for path in sorted((ROOT / "tests/security").glob("test_*.py")):
            suites.append((path.stem.removeprefix("test_"), ["python3", str(path.relative_to(ROOT))]))
        suites += [("replica", ["python3", "tests/replica/test_replica.py"]),
                   ("pgbouncer", ["python3", "tests/pooler/test_pgbouncer.py"]),
                   ("demo", ["python3", "tests/demo/test_demo.py"])]
        if major == "18":
            suites.append(("oauth", ["python3", "tests/oauth/test_oauth.py"]))
        for name, command in suites:
            jobs.append(Job(f"{name}-{major}", command, "suite", after=[build], env=env))
    jobs.append(Job("core-tests", nice + ["cargo", "test", "-p", "electric_auth_core"], "build"))
    jobs.append(Job("clippy-core", nice + ["cargo", "clippy", "-p", "electric_auth_core",
                                           "--all-targets", "--", "-D", "warnings"], "build"))
    for major in majors:
        # After the major's build: the dependencies' build scripts (bindgen) have run.
        jobs.append(Job(f"clippy-{major}", nice + [
            "cargo", "clippy", "-p", "electric_auth", "--all-targets", "--no-default-features",
            "--features", f"pg{major} pg_test", "--", "-D", "warnings"], "build",
            after=[f"build-{major}"]))
    if "15" in majors:
        every_15 = [j.name for j in jobs if j.name.endswith("-15") and j.lane == "suite"]
        jobs.append(Job("package-15", nice + ["bash", "scripts/package.sh", "15"], "build"))
        jobs.append(Job("upgrade", nice + ["python3", "tests/upgrade/test_upgrade.py"], "build",
                        after=every_15))
        jobs.append(Job("deb", ["bash", "tests/package/test_deb.sh"], "suite",
                        after=every_15 + ["package-15", "upgrade"]))
    jobs.append(Job("fuzz", nice + ["make", "--no-print-directory", "fuzz"], "build"))
    return jobs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("majors", nargs="*")
    parser.add_argument("--suites", type=int, default=int(os.environ.get("EA_SUITES", "4")))
    args = parser.parse_args()
    majors = args.majors or subprocess.run(
        ["bash", "-c", "source scripts/pg_versions.sh && echo $PG_VERSIONS"], cwd=ROOT,
        check=True, capture_output=True, text=True).stdout.split()
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    jobs = jobs_for(majors)
    order = {job.name: i for i, job in enumerate(jobs)}
    slots = {"build": 1, "suite": args.suites}
    started = time.monotonic()
    done, failed = set(), None

    def stamp():
        return f"[{time.monotonic() - started:6.0f} s]"

    def stop_all():
        for job in jobs:
            if job.process and job.process.poll() is None:
                os.killpg(job.process.pid, signal.SIGTERM)
        for job in jobs:
            if job.process and job.process.poll() is None:
                try:
                    job.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(job.process.pid, signal.SIGKILL)

    try:
        while len(done) < len(jobs) and failed is None:
            for job in jobs:
                if job.process and job.status is None and job.process.poll() is not None:
                    job.status, job.ended = job.process.returncode, time.monotonic()
                    took = job.ended - job.started
                    if job.status == 0:
                        done.add(job.name)
                        print(f"{stamp()} ok    {job.name} ({took:.0f} s)", flush=True)
                    else:
                        failed = job
                        print(f"{stamp()} FAIL  {job.name} ({took:.0f} s), exit {job.status}",
                              flush=True)
                        break
            if failed:
                break
            for lane, limit in slots.items():
                running = [j for j in jobs if j.lane == lane and j.process and j.status is None]
                ready = [j for j in jobs if j.lane == lane and j.process is None
                         and j.after <= done]
                for job in sorted(ready, key=lambda j: order[j.name])[:limit - len(running)]:
                    job.started = time.monotonic()
                    with open(job.log, "w") as log:
                        log.write(f"$ {shlex.join(job.command)}\n")
                        log.flush()
                        job.process = subprocess.Popen(
                            job.command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, **job.env),
                            start_new_session=True)
                    print(f"{stamp()} start {job.name}", flush=True)
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop_all()
        raise
    if failed:
        stop_all()
        print(f"\n==== {failed.name} failed; the end of {failed.log.relative_to(ROOT)}:\n")
        lines = failed.log.read_text(errors="replace").splitlines()
        print("\n".join(lines[-80:]))
        sys.exit(1)
    total = time.monotonic() - started
    print(f"\nEvery layer passed on Postgres {' '.join(majors)} in {total:.0f} s. Wall time of "
          "each job (the suites overlap each other and the builds):")
    for job in sorted(jobs, key=lambda j: j.started):
        print(f"  {job.name:24} {job.lane:5}  start {job.started - started:6.0f} s  "
              f"took {job.ended - job.started:5.0f} s")


if __name__ == "__main__":
    main()
