"""Claiming units of work in the catalog so that several workers on one store never do a unit twice.

`claim(...)` wraps `Catalog.claim_unit`. A unit left 'running' by a worker that died on this same host
(the worker id is `host:pid:...` and that pid is gone) is taken over at once instead of waiting for its
lease to run out, so killing a run and starting it again resumes immediately.
"""

from __future__ import annotations

import logging
import os
import socket

from storage import Catalog

__all__ = ["claim", "worker_is_dead"]

log = logging.getLogger(__name__)


def worker_is_dead(worker_id: str | None) -> bool:
    """True when `worker_id` names a process of this host that no longer exists."""
    if not worker_id:
        return False
    parts = worker_id.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def claim(catalog: Catalog, stage: str, video_id: str, unit_key: str, worker_id: str, uri: str | None = None) -> bool:
    """Claim (stage, video_id, unit_key) for `worker_id`; True when this worker now owns it."""
    if catalog.claim_unit(stage, video_id, unit_key, worker_id, uri=uri):
        return True
    record = catalog.unit(stage, video_id, unit_key)
    if record is not None and record.state == "running" and (
        record.worker_id == worker_id or worker_is_dead(record.worker_id)
    ):
        log.info("taking over %s unit %s/%s from dead worker %s", stage, video_id[:12], unit_key, record.worker_id)
        return catalog.claim_unit(stage, video_id, unit_key, worker_id, uri=uri, lease_s=0)
    return False
