"""A temporary Prefect API server for one CLI run, tied to our process's life.

Without PREFECT_API_URL, Prefect starts an "ephemeral" server subprocess per run and stops it from an
atexit hook, so a `kill -9` of the run leaves a ~200 MB uvicorn process behind. We start the same server
ourselves (the uvicorn command Prefect uses), with the kernel asked to kill it when we die
(PR_SET_PDEATHSIG, Linux) and in its own process group, and point this process's Prefect settings at it.
Starting it early, while the rest of the run imports its models, hides most of its start-up time.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator

import httpx
import prefect
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

__all__ = ["LocalServer", "local_prefect_server"]

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the atexit-free stop below still covers normal exits
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """A Prefect server subprocess on a free loopback port; `api_url` once `wait()` returned."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        self._stderr = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            preexec_fn=_die_with_parent, start_new_session=True,
        )

    def wait(self, timeout_s: float = 120.0) -> str:
        """Block until the server answers /health; raises RuntimeError (with its stderr) if it dies."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self._stderr.seek(0)
                    err = self._stderr.read().decode(errors="replace")
                    raise RuntimeError(f"the temporary Prefect server exited with code {self.process.returncode}: "
                                       f"{err.strip()[-500:]}")
                try:
                    if client.get(self.api_url + "/health").status_code == 200:
                        return self.api_url
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the temporary Prefect server did not answer within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._stderr.close()


@contextlib.contextmanager
def local_prefect_server(while_starting: Callable[[], None] | None = None, timeout_s: float = 120.0) -> Iterator[str]:
    """Run the with-block against a fresh temporary server (unless PREFECT_API_URL names one already);
    `while_starting` runs while the server starts (e.g. loading what the run needs)."""
    configured = PREFECT_API_URL.value()  # environment or the active Prefect profile
    if configured:
        if while_starting:
            while_starting()
        yield configured
        return
    server = LocalServer()
    try:
        if while_starting:
            while_starting()
        url = server.wait(timeout_s)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                _drain_logs()  # the run's last log records go to the server before it stops
    finally:
        server.stop()


def _drain_logs() -> None:
    with contextlib.suppress(Exception):
        APILogWorker.drain_all(timeout=5)
