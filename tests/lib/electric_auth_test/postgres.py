"""Postgres for the suites: which server, throwaway clusters run as the `postgres` OS user
(Postgres refuses root), psycopg connections and sessions, psql.

The server is the one whose pg_config $PG_CONFIG names (default Debian's 15); scripts/test_major.sh
sets it per major, and a suite run alone takes `--major NN` (see electric_auth_test.main).

Also a command, for the shell scripts (scripts/cluster.sh runs it):
    python3 -m electric_auth_test.postgres start NAME PORT [OPTION...]   |   ... stop NAME
with EA_PRELOAD (default electric_auth) and EA_CONF (appended to postgresql.conf) as there.
"""

import functools
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import sys
import time

import psycopg
import psycopg.sql

from . import ROOT, scratch_dir

# A suite's clusters (and anything else it listens on) take base ports from 54300 to 54499,
# no two with the same last two digits; each major above 15 adds 100, so the same suite on two
# majors never shares a port, and no two suites meet on any majors.
OLDEST_MAJOR = 15
PORT_STRIDE = 100


def pg_config():
    """The pg_config of the server under test: `--major NN` on the command line (read here too,
    since suites compute ports and names from the major when they are imported, before `main`
    takes the option out), else PG_CONFIG, else Debian's 15."""
    if "--major" in sys.argv[:-1]:
        return pg_config_for(sys.argv[sys.argv.index("--major") + 1])
    return os.environ.get("PG_CONFIG", "/usr/bin/pg_config")


@functools.cache
def pg_config_for(major):
    """The pg_config of the test server for `major`, as scripts/pg_versions.sh says (so
    PG_WHEEL_ROOT is honoured)."""
    return subprocess.run(
        ["bash", "-c", 'source scripts/pg_versions.sh && pg_config_for "$1"', "-", str(major)],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


@functools.cache
def pg_config_value(flag, config=None):
    """`pg_config FLAG` of the server under test (or of `config`)."""
    return subprocess.run([config or pg_config(), flag], check=True, capture_output=True,
                          text=True).stdout.strip()


def bindir(config=None):
    return pathlib.Path(pg_config_value("--bindir", config or pg_config()))


def server_major(config=None):
    """15, 16, 17 or 18: the major of the server under test (or of `config`)."""
    version = pg_config_value("--version", config or pg_config())  # "PostgreSQL 17.6 ..."
    return int(re.match(r"PostgreSQL (\d+)", version).group(1))


def postgres_command(*args):
    """ARGS as a command that runs as the `postgres` OS user, whoever runs the suite."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    prefix = ([] if me == "postgres" else ["runuser", "-u", "postgres", "--"] if me == "root"
              else ["sudo", "-u", "postgres"])
    return prefix + [str(a) for a in args]


def as_postgres(*args, check=True, **kwargs):
    """subprocess.run(ARGS) as the `postgres` OS user, from /: the checkout may be under a
    directory `postgres` cannot enter."""
    kwargs.setdefault("cwd", "/")
    return subprocess.run(postgres_command(*args), check=check, **kwargs)


def remove_tree(path):
    """rm -rf PATH, which may belong to `postgres`."""
    if os.geteuid() == 0:
        shutil.rmtree(path, ignore_errors=True)
    else:
        as_postgres("rm", "-rf", path)


class Cluster:
    """A throwaway cluster of the server under test, run as `postgres`.

    Cluster(NAME, PORT) lives in $EA_TEST_TMP/NAME-pgNN-data (its log: server.log there), with
    its socket in NAME-pgNN-sock, on port PORT + 100 * (NN - 15); it listens on no TCP address
    unless an option says so, preloads `preload` (a list, as shared_preload_libraries takes it;
    "" for none) and runs with fsync off plus `options` (server options such as "-c x=y"; a
    later -c wins over these defaults). `dbname` is what connect() opens unless told.
    exact=True takes NAME and PORT as they are (scripts/cluster.sh)."""

    def __init__(self, name, port, *, preload="electric_auth", options=(), dbname="postgres",
                 config=None, exact=False):
        self.pg_config = config or pg_config()
        self.major = server_major(self.pg_config)
        if not exact:
            name = f"{name}-pg{self.major}"
            port += PORT_STRIDE * (self.major - OLDEST_MAJOR)
        self.name, self.port = name, port
        self.preload, self.options, self.dbname = preload, tuple(options), dbname
        self.bin = bindir(self.pg_config)
        self.data = scratch_dir(f"{name}-data")
        self.sock = str(scratch_dir(f"{name}-sock"))

    # -- lifecycle ---------------------------------------------------------------------------

    def create(self, conf=""):
        """A new data directory (whatever was there is stopped and removed), with `conf`
        appended to its postgresql.conf before the server first starts."""
        self._fresh_directories()
        as_postgres(self.bin / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                    "--no-sync", stdout=subprocess.DEVNULL)
        self.append_conf(conf)

    def create_standby_of(self, primary, conf=""):
        """A new data directory copied from `primary` with pg_basebackup -R (a streaming hot
        standby once started), with `conf` appended to its postgresql.conf."""
        self._fresh_directories()
        as_postgres(self.bin / "pg_basebackup", "-D", self.data, "-h", primary.sock,
                    "-p", primary.port, "-U", "postgres", "-R", "--checkpoint=fast")
        self.append_conf(conf)

    def _fresh_directories(self):
        self.stop("immediate")
        root = scratch_dir("")
        if not root.exists():  # $EA_TEST_TMP: `postgres` makes its directories in it
            root.mkdir(parents=True)
            root.chmod(0o1777)
        remove_tree(self.data)
        remove_tree(self.sock)
        as_postgres("mkdir", "-p", self.sock)

    def append_conf(self, conf):
        if conf:
            as_postgres("tee", "-a", self.data / "postgresql.conf", input=conf + "\n",
                        text=True, stdout=subprocess.DEVNULL)

    def start(self):
        """Starts the server on the data directory as it is, and waits until it accepts
        connections."""
        options = [f"-p {self.port}", f"-k {self.sock}", "-c listen_addresses=''",
                   f"-c shared_preload_libraries='{self.preload}'", "-c fsync=off",
                   *self.options]
        as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.data / "server.log", "-w",
                    "start", "-o", " ".join(options), stdout=subprocess.DEVNULL)

    def fresh(self, conf=""):
        """create(conf), then start(): the usual way a suite begins."""
        self.create(conf)
        self.start()
        return self

    def stop(self, mode="fast"):
        """Stops the server if it runs (no error if it does not). A server still running after
        pg_ctl's wait (a process that would not exit, say one spinning in a hook) is killed and
        reported: a test must not pass while it leaves such a process behind."""
        if not self.data.exists():
            return
        as_postgres(self.bin / "pg_ctl", "-D", self.data, "-w", "stop", "-m", mode,
                    check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return  # stopped (or never started)
        try:
            os.kill(pid, 9)  # its children notice the postmaster's death and exit
        except OSError:
            pass
        raise AssertionError(f"{self.name}: the server did not stop ({mode}); killed")

    # -- configuration -----------------------------------------------------------------------

    def reload_time(self):
        with self.connect() as c:
            return c.execute("SELECT pg_conf_load_time()").fetchone()[0]

    def wait_for_reload(self, before):
        """Waits until the postmaster has re-read its configuration since `before` (and so
        signalled every backend): a new backend inherits the postmaster's load time."""
        for _ in range(200):
            if self.reload_time() > before:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: the configuration reload never happened")

    def reload(self):
        """pg_reload_conf(), returning once the reload has taken effect."""
        before = self.reload_time()
        with self.connect() as c:
            c.execute("SELECT pg_reload_conf()")
        self.wait_for_reload(before)

    def alter_system(self, name, value):
        """ALTER SYSTEM SET name = value (value None: RESET name; name None: RESET ALL), then a
        reload that has reached every backend."""
        with self.connect() as su:
            if name is None:
                su.execute("ALTER SYSTEM RESET ALL")
            elif value is None:
                su.execute(f"ALTER SYSTEM RESET {name}")
            else:
                literal = psycopg.sql.Literal(value).as_string(su)
                su.execute(f"ALTER SYSTEM SET {name} = {literal}")
        self.reload()

    # -- clients -----------------------------------------------------------------------------

    def connect(self, user="postgres", dbname=None, host=None, **kwargs):
        """An autocommit psycopg connection (through the socket unless `host` says otherwise)."""
        return psycopg.connect(host=host or self.sock, port=self.port, user=user,
                               dbname=dbname or self.dbname, autocommit=True, **kwargs)

    def psql(self, *args, dbname=None, **kwargs):
        """This server's psql, run as `postgres` with ON_ERROR_STOP; `input` is its script."""
        return as_postgres(self.bin / "psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", self.sock,
                           "-p", self.port, "-d", dbname or self.dbname, *args, **kwargs)

    def log(self):
        """The server log so far (search it with electric_auth_test.logs)."""
        path = self.data / "server.log"
        try:
            return path.read_text(errors="replace")
        except PermissionError:
            return as_postgres("cat", path, capture_output=True).stdout.decode(errors="replace")


def psql_with_bind():
    """A psql that has \\bind (16 or later): the server's own, or one of the test servers'."""
    candidates = [bindir() / "psql"]
    candidates += [pathlib.Path(pg_config_for(m)).parent / "psql" for m in (16, 17, 18)]
    for psql in candidates:
        if not psql.exists():
            continue
        version = subprocess.run([str(psql), "--version"], capture_output=True, text=True)
        found = re.search(r"(\d+)\.", version.stdout)
        if version.returncode == 0 and found and int(found.group(1)) >= 16:
            return str(psql)
    return None


class Diag:
    """A copy of a notice's or error's fields (psycopg's own object dies with its result)."""

    def __init__(self, diag):
        self.severity = diag.severity
        self.sqlstate = diag.sqlstate
        self.message_primary = diag.message_primary
        self.message_detail = diag.message_detail
        self.message_hint = diag.message_hint


class Session:
    """One connection to `cluster`, with every NOTICE/WARNING and error it received kept for
    inspection."""

    def __init__(self, cluster, user="postgres", dbname=None, **kwargs):
        self.conn = cluster.connect(user=user, dbname=dbname, **kwargs)
        self.notices = []
        self.conn.add_notice_handler(lambda diag: self.notices.append(Diag(diag)))
        self.errors = []

    def call(self, function, args_sql, *params):
        """Runs SELECT electric_auth.<function>(<args_sql>) and returns ("ok", value) or
        (sqlstate, message); inside a transaction, a failure rolls back to before the call."""
        in_transaction = self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        if in_transaction:
            self.conn.execute("SAVEPOINT electric_auth_call")
        try:
            row = self.conn.execute(
                f"SELECT electric_auth.{function}({args_sql})", params
            ).fetchone()
            return ("ok", row[0])
        except psycopg.Error as e:
            self.errors.append(Diag(e.diag))
            if in_transaction:
                self.conn.execute("ROLLBACK TO SAVEPOINT electric_auth_call")
            return (e.sqlstate, e.diag.message_primary)

    def user_id(self, token):
        return self.call("user_id", "%s", token)

    def execute(self, sql, *params):
        try:
            return self.conn.execute(sql, params)
        except psycopg.Error as e:
            self.errors.append(Diag(e.diag))
            raise

    def alive(self):
        return self.conn.execute("SELECT 1").fetchone()[0] == 1

    def texts(self):
        """Every message, detail and hint this session was sent, errors and notices alike."""
        out = []
        for d in self.notices + self.errors:
            out += [d.message_primary or "", d.message_detail or "", d.message_hint or ""]
        return out

    def close(self):
        self.conn.close()


def cluster_command(argv):
    """scripts/cluster.sh: `start NAME PORT [OPTION...]` or `stop NAME`, NAME and PORT as
    given. The cluster's data and socket: $EA_TEST_TMP/NAME-data, NAME-sock (default /tmp)."""
    usage = "usage: cluster.sh start NAME PORT [OPTION...] | cluster.sh stop NAME"
    if len(argv) < 2 or argv[0] not in ("start", "stop") or (argv[0] == "start" and len(argv) < 3):
        sys.exit(usage)
    action, name = argv[:2]
    # Not left in the environment the server inherits: it logs it at debug levels.
    conf = os.environ.pop("EA_CONF", "")
    if action == "start":
        Cluster(name, int(argv[2]), preload=os.environ.get("EA_PRELOAD", "electric_auth"),
                options=argv[3:], exact=True).fresh(conf)
    else:
        Cluster(name, 0, exact=True).stop()


if __name__ == "__main__":
    cluster_command(sys.argv[1:])
