"""Real servers on loopback for the tests and the scale benchmark: Debian's PostgreSQL, moto's S3 server,
a Prefect server and Prefect process workers. Every one listens on 127.0.0.1 only, is started in a
temporary folder, waits a bounded time to be ready and is stopped (with its folder removed) by `stop()`,
which the fixtures call even when a test fails. Children also die with the process that started them
(PR_SET_PDEATHSIG), so a killed test session leaves no server behind (PostgreSQL, which daemonises
itself through pg_ctl, is stopped by an atexit hook as well).

Loaded by path (`load()` in the conftest files and benchmarks/bench_scale.py): tests/ is not a package.

PostgreSQL needs its binaries: `PIXELREFER_PG_BIN`, else the folder of `pg_ctl` on PATH, else the newest
Debian folder /usr/lib/postgresql/<version>/bin. As root, initdb and postgres run as the `postgres` user
(initdb refuses root), in a folder that user can reach. Clients authenticate with a password taken from
the environment (PGPASSWORD), never from a URL or a command line.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

__all__ = ["LOOPBACK", "MotoServer", "api", "process_tree", "PostgresServer", "PrefectServer", "PrefectWorker", "find_pg_bin", "free_port",
           "s3_env", "wait_until"]

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # in the child, between fork and exec
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(cmd: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server or worker standing for a machine: output to `log`, its own session (killing the group
    kills what it started), and killed with this process (no server outlives a killed test run)."""
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent, start_new_session=True, cwd=cwd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, proc: subprocess.Popen | None = None,
               log: Path | None = None, every_s: float = 0.2) -> None:
    """Poll `check` until it is true; RuntimeError (with the end of `log`) on timeout or when `proc` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}\n{_tail(log)}")
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(every_s)
    raise RuntimeError(f"{what}: not ready within {timeout_s:.0f} s\n{_tail(log)}")


def _tail(log: Path | None, n: int = 3000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-n:]


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
        return 200 <= resp.status < 500


def api(api_url: str, path: str, body: dict | None = None, method: str | None = None):
    """One JSON call to a Prefect server's REST API (`api_url` ends in /api)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{api_url}{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read() or b"null")


def process_tree(pid: int) -> list[int]:
    """`pid` and every descendant (from /proc; Prefect starts flow runs in their own sessions, so a process
    group does not hold them all)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _stop_group(proc: subprocess.Popen, timeout_s: float = 15.0) -> None:
    """SIGTERM the process group of `proc` (started with start_new_session), SIGKILL after `timeout_s`."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


# -- PostgreSQL ---------------------------------------------------------------------------------------------
def find_pg_bin() -> str | None:
    """The folder of PostgreSQL's server binaries (initdb, pg_ctl, postgres), or None."""
    given = os.environ.get("PIXELREFER_PG_BIN")
    if given:
        return given if os.path.isfile(os.path.join(given, "initdb")) else None
    on_path = shutil.which("pg_ctl")
    if on_path and os.path.isfile(os.path.join(os.path.dirname(on_path), "initdb")):
        return os.path.dirname(on_path)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class PostgresServer:
    """An unprivileged PostgreSQL cluster in a temporary folder, TCP on 127.0.0.1 only (no Unix socket),
    password authentication (scram-sha-256) for its one user."""

    user = "pixelrefer"

    def __init__(self, bin_dir: str):
        self.bin_dir = bin_dir
        self.password = secrets.token_hex(12)
        self.port = 0
        self.base = Path(tempfile.mkdtemp(prefix="pixelrefer-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self._as_postgres = os.geteuid() == 0
        self._started = False

    def _run(self, *args: str, timeout_s: float = 120) -> None:
        cmd = [os.path.join(self.bin_dir, args[0]), *args[1:]]
        if self._as_postgres:  # initdb and postgres refuse to run as root
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=self.base)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({res.returncode}): {res.stderr[-2000:]}\n{_tail(self.log)}")

    def start(self, timeout_s: float = 120) -> PostgresServer:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            import pwd

            pg = pwd.getpwnam("postgres")
            os.chmod(self.base, 0o700)
            for path in (self.base, pwfile):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile), "-A", "scram-sha-256",
                  "-E", "UTF8", "--no-sync", "--locale", "C", timeout_s=timeout_s)
        pwfile.unlink()
        for attempt in range(5):  # a free port can be taken between choosing and binding it
            self.port = free_port()
            options = (f"-p {self.port} -c listen_addresses={LOOPBACK} -c unix_socket_directories='' "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "-t",
                          str(int(timeout_s)), "start", timeout_s=timeout_s + 10)
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self._started = True
        atexit.register(self.stop)
        return self

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs besides the URL: the password, as libpq reads it."""
        return {"PGPASSWORD": self.password}

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of `database`, without the password (it comes from PGPASSWORD)."""
        return f"postgresql+psycopg://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name`; returns its URL."""
        import psycopg

        with psycopg.connect(host=LOOPBACK, port=self.port, user=self.user, password=self.password,
                             dbname="postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", timeout_s=60)
        shutil.rmtree(self.base, ignore_errors=True)


# -- S3 (moto) ------------------------------------------------------------------------------------------------
def s3_env(endpoint: str) -> dict[str, str]:
    """The environment an S3 client needs to reach `endpoint` with dummy credentials, and nothing else: no
    shared config files, no instance-metadata lookups."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "pixelrefer-test",
        "AWS_SECRET_ACCESS_KEY": "pixelrefer-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


class MotoServer:
    """moto's S3-compatible server (`moto_server`) on a loopback port."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="pixelrefer-moto-"))
        self.log = self.base / "server.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return s3_env(self.endpoint)

    def start(self, timeout_s: float = 60) -> MotoServer:
        self.port = free_port()
        self.proc = spawn([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)], self.log,
                          self.base)
        wait_until(lambda: _http_ok(self.endpoint + "/moto-api/"), timeout_s, "moto S3 server", self.proc, self.log)
        return self

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                     aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
            self.proc = None
        shutil.rmtree(self.base, ignore_errors=True)


# -- Prefect ----------------------------------------------------------------------------------------------------
def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING", "PREFECT_CLI_PROMPT": "false"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


def prefect_cli(args: list[str], env: dict[str, str], timeout_s: float = 180, cwd: Path = REPO) -> str:
    """Run `prefect ARGS` (the CLI of this venv); returns its output, RuntimeError when it fails."""
    exe = os.path.join(os.path.dirname(sys.executable), "prefect")
    res = subprocess.run([exe, *args], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=timeout_s, cwd=cwd, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


class PrefectServer:
    """`prefect server start` on a loopback port, with its own PREFECT_HOME (SQLite database)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="pixelrefer-prefect-"))
        self.log = self.home / "server.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/api"

    @property
    def env(self) -> dict[str, str]:
        """What a Prefect client (CLI, worker, flow run) needs to use this server."""
        return prefect_env(self.home, self.api_url)

    def start(self, timeout_s: float = 180) -> PrefectServer:
        self.port = free_port()
        exe = os.path.join(os.path.dirname(sys.executable), "prefect")
        env = {**os.environ, **prefect_env(self.home), "PREFECT_UI_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        self.proc = spawn([exe, "server", "start", "--host", LOOPBACK, "--port", str(self.port)], self.log,
                          self.home, env)
        wait_until(lambda: _http_ok(self.api_url + "/health"), timeout_s, "prefect server", self.proc, self.log,
                   every_s=0.5)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            tree = process_tree(self.proc.pid)
            _stop_group(self.proc, timeout_s=20)
            for pid in tree[1:]:  # flow runs still running in their own sessions
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc = None
        shutil.rmtree(self.home, ignore_errors=True)


class PrefectWorker:
    """`prefect worker start --pool POOL` standing for one machine: its own process group (so killing the
    machine kills the worker and the flow runs it started), environment and working folder."""

    def __init__(self, name: str, pool: str, env: dict[str, str], limit: int = 1, folder: Path | None = None):
        self.name, self.pool, self.limit = name, pool, limit
        self.env = env
        self.folder = folder or Path(tempfile.mkdtemp(prefix=f"pixelrefer-{name}-"))
        self.log = self.folder / "worker.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 120) -> PrefectWorker:
        exe = os.path.join(os.path.dirname(sys.executable), "prefect")
        self.proc = spawn([exe, "worker", "start", "--pool", self.pool, "--name", self.name, "--limit",
                           str(self.limit), "--type", "process"], self.log, REPO, {**os.environ, **self.env})
        wait_until(lambda: b"started" in self.log.read_bytes().lower(), timeout_s, f"worker {self.name}", self.proc,
                   self.log, every_s=0.5)
        return self

    def kill(self) -> None:
        """SIGKILL the worker and every process it started, flow runs included (the machine dies)."""
        if self.proc is not None and self.proc.poll() is None:
            for pid in process_tree(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            tree = process_tree(self.proc.pid)
            _stop_group(self.proc, timeout_s=20)
            for pid in tree[1:]:  # flow runs still running in their own sessions
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc = None
