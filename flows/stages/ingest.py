"""Stage 2: fingerprint and probe one video, write its `videos` row once, record broken files.

video_id = sha256 of the bytes. The `videos` unit key is "probe". A video the reader refuses
(`VideoError`) is recorded as failed, not retryable: the same bytes give the same error. A video whose
tail does not decode is kept as *partial*: its readable frames are used, and the row says how many
decode and why the rest does not.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pyarrow.parquet as pq

from flows.stages.discover import VideoSource, localize
from flows.stages.outcomes import IngestOutcome, Status
from flows.stages.units import UnitRef, run_unit
from pixelrefer_core.video import VideoInfo, fingerprint, probe
from storage import Store, table_from_records
from storage.catalog import DEFAULT_LEASE_S

__all__ = ["INGEST_STAGE", "PROBE_KEY", "ingest_ref", "ingest_video", "skipped_outcome"]

log = logging.getLogger(__name__)
INGEST_STAGE = "ingest"
PROBE_KEY = "probe"
_PROBE_FIELDS = ("fps", "num_frames", "width", "height", "duration_s", "decoded_frames", "partial_reason")


def ingest_ref(video_id: str, uri: str | None = None) -> UnitRef:
    return UnitRef(INGEST_STAGE, video_id, PROBE_KEY, uri)


def skipped_outcome(store: Store, source: VideoSource, video_id: str) -> IngestOutcome:
    """The outcome of an ingest unit done before, from its stored `videos` row."""
    with store.fs.open(store.unit_path("videos", video_id, PROBE_KEY), "rb") as fh:
        row = pq.ParquetFile(fh).read().to_pylist()[0]
    return IngestOutcome(uri=source.uri, local_path=source.local_path, status=Status.SKIPPED, video_id=video_id,
                         size_bytes=source.size_bytes, **{k: row.get(k) for k in _PROBE_FIELDS})


def _row(video_id: str, source: VideoSource, info: VideoInfo) -> dict:
    return dict(
        video_id=video_id, uri=source.uri, size_bytes=source.size_bytes, fps=float(info.fps),
        num_frames=int(info.num_frames), duration_s=float(info.duration_s), width=int(info.width),
        height=int(info.height), decoded_frames=int(info.decoded_frames), partial_reason=info.partial_reason,
        probed_at=dt.datetime.now(dt.UTC),
    )


def ingest_video(store: Store, source: VideoSource, worker_id: str, video_id: str | None = None,
                 lease_s: float = DEFAULT_LEASE_S) -> IngestOutcome:
    """Fingerprint (unless the plan already did: `video_id`) + probe `source` and record it; see
    IngestOutcome for the outcomes. Raises only for transient problems (I/O while copying or writing):
    the caller may retry those.
    """
    local = localize(source)
    video_id = video_id or fingerprint(local)
    ref = ingest_ref(video_id, source.uri)
    written: dict[str, Any] = {}

    def work() -> int:
        written.update(_row(video_id, source, probe(local)))
        store.write_unit("videos", video_id, PROBE_KEY, table_from_records("videos", [written]))
        return 1

    result = run_unit(store, ref, worker_id, work, lease_s)
    if result.status == Status.DONE:
        return IngestOutcome(uri=source.uri, local_path=local, status=Status.DONE, video_id=video_id,
                             size_bytes=source.size_bytes, **{k: written[k] for k in _PROBE_FIELDS})
    if result.status == Status.SKIPPED:
        return skipped_outcome(store, source, video_id)
    return IngestOutcome(uri=source.uri, local_path=local, status=result.status, video_id=video_id,
                         size_bytes=source.size_bytes, error=result.error, previously=result.previously)
