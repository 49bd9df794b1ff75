"""Claims: a unit left 'running' by a dead process of this host is taken over at once; a live worker's is not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from flows.stages.claims import claim, worker_is_dead
from storage import Store


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_running_unit_of_a_dead_worker_is_taken_over_but_a_live_one_is_not(tmp_path):
    catalog = Store.open(str(tmp_path / "s")).catalog
    host = socket.gethostname()
    dead = f"{host}:{_dead_pid()}:x"
    assert worker_is_dead(dead)
    assert catalog.claim_unit("track", "v1", "t-1", dead)
    assert claim(catalog, "track", "v1", "t-1", f"{host}:{os.getpid()}:me")
    assert catalog.unit("track", "v1", "t-1").worker_id.endswith(":me")

    live = f"{host}:{os.getppid()}:other"  # our parent process is alive
    assert not worker_is_dead(live)
    assert catalog.claim_unit("track", "v2", "t-1", live)
    assert not claim(catalog, "track", "v2", "t-1", f"{host}:{os.getpid()}:me")
    catalog.mark_done("track", "v2", "t-1")
    assert not claim(catalog, "track", "v2", "t-1", f"{host}:{os.getpid()}:me")
    assert not worker_is_dead("otherhost:1:x") and not worker_is_dead(None)
