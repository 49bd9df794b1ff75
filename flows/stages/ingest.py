"""Stage 2: fingerprint and probe one video, write its `videos` row once, record broken files.

video_id = sha256 of the bytes. The `videos` unit key is "probe". A video the reader refuses
(`VideoError`) is recorded as failed, not retryable: the same bytes give the same error.
"""

from __future__ import annotations

import datetime as dt
import logging

import pyarrow.parquet as pq

from flows.stages.claims import claim
from flows.stages.discover import VideoSource, localize
from flows.stages.outcomes import IngestOutcome
from pixelrefer_core.errors import VideoError
from pixelrefer_core.video import fingerprint, probe
from storage import Store, table_from_records

__all__ = ["INGEST_STAGE", "PROBE_KEY", "ingest_video"]

log = logging.getLogger(__name__)
INGEST_STAGE = "ingest"
PROBE_KEY = "probe"


def _from_unit(store: Store, source: VideoSource, local: str, video_id: str) -> IngestOutcome:
    with store.fs.open(store.unit_path("videos", video_id, PROBE_KEY), "rb") as fh:
        row = pq.read_table(fh).to_pylist()[0]
    return IngestOutcome(
        uri=source.uri, local_path=local, status="skipped", video_id=video_id, fps=row["fps"],
        num_frames=row["num_frames"], width=row["width"], height=row["height"], duration_s=row["duration_s"],
    )


def ingest_video(store: Store, source: VideoSource, worker_id: str) -> IngestOutcome:
    """Fingerprint + probe `source` and record it; see IngestOutcome.status for the outcomes.

    Raises only for transient problems (I/O while copying or writing): the caller may retry those.
    """
    local = localize(source)
    video_id = fingerprint(local)
    catalog = store.catalog
    record = catalog.unit(INGEST_STAGE, video_id, PROBE_KEY)
    if record is not None and record.state == "done" and store.has_unit("videos", video_id, PROBE_KEY):
        return _from_unit(store, source, local, video_id)
    if record is not None and record.state == "failed" and not record.retryable:
        return IngestOutcome(source.uri, local, "failed", video_id, error=record.error, previously=True)
    if not claim(catalog, INGEST_STAGE, video_id, PROBE_KEY, worker_id, uri=source.uri):
        return IngestOutcome(source.uri, local, "busy", video_id)
    try:
        info = probe(local)
    except VideoError as exc:
        reason = f"{type(exc).__name__}: {exc.reason}"
        catalog.mark_failed(INGEST_STAGE, video_id, PROBE_KEY, reason, retryable=False)
        log.warning("%s: cannot be read (%s)", source.uri, reason)
        return IngestOutcome(source.uri, local, "failed", video_id, error=reason)
    except Exception as exc:
        catalog.mark_failed(INGEST_STAGE, video_id, PROBE_KEY, f"{type(exc).__name__}: {exc}", retryable=True)
        raise
    row = dict(
        video_id=video_id, uri=source.uri, size_bytes=source.size_bytes, fps=float(info.fps),
        num_frames=int(info.num_frames), duration_s=float(info.duration_s), width=int(info.width),
        height=int(info.height), probed_at=dt.datetime.now(dt.UTC),
    )
    try:
        store.write_unit("videos", video_id, PROBE_KEY, table_from_records("videos", [row]))
    except Exception as exc:
        catalog.mark_failed(INGEST_STAGE, video_id, PROBE_KEY, f"{type(exc).__name__}: {exc}", retryable=True)
        raise
    catalog.mark_done(INGEST_STAGE, video_id, PROBE_KEY)
    return IngestOutcome(
        uri=source.uri, local_path=local, status="done", video_id=video_id, fps=row["fps"],
        num_frames=row["num_frames"], width=row["width"], height=row["height"], duration_s=row["duration_s"],
    )
