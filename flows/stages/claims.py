"""Claiming units of work in the catalog so that several workers on one store never do a unit twice.

A claim lives as long as its holder heartbeats (flows.run_context renews every claim of a worker every
quarter lease); a claim whose holder went silent for `lease_s` is taken over by the next claimer, on any
host. Two cases are recognised at once, without waiting for the lease: a holder on this host whose
process is gone, and a holder on this host with *our* pid but another worker id — an earlier process
that had our pid, as when a container's worker (pid 1) is restarted.
"""

from __future__ import annotations

import logging
import os
import socket

from storage import Catalog
from storage.catalog import DEFAULT_LEASE_S

__all__ = ["claim", "worker_is_dead"]

log = logging.getLogger(__name__)


def worker_is_dead(worker_id: str | None, me: str | None = None) -> bool:
    """True when `worker_id` (`host:pid:...`) names a process of this host that no longer runs."""
    if not worker_id:
        return False
    parts = worker_id.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return me is not None and worker_id != me  # our pid, another process instance: it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(catalog: Catalog, stage: str, video_id: str, unit_key: str, worker_id: str, uri: str | None = None,
          lease_s: float = DEFAULT_LEASE_S) -> bool:
    """Claim (stage, video_id, unit_key) for `worker_id`; True when this worker now owns it."""
    if catalog.claim_unit(stage, video_id, unit_key, worker_id, uri=uri, lease_s=lease_s):
        return True
    record = catalog.unit(stage, video_id, unit_key)
    if record is not None and record.state == "running" and (
        record.worker_id == worker_id or worker_is_dead(record.worker_id, me=worker_id)
    ):
        log.info("taking over %s unit %s/%s from gone worker %s", stage, video_id[:12], unit_key, record.worker_id)
        return catalog.claim_unit(stage, video_id, unit_key, worker_id, uri=uri, lease_s=0)
    return False
