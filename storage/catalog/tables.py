"""The catalog's tables (SQLAlchemy Core) and its schema version.

Version history (bump CATALOG_SCHEMA_VERSION and add the step to storage.catalog.schema.MIGRATIONS):

1. runs, prompts, units, schema_version.
2. units + rows, table_rows, heartbeat_at; runs + host, pid, heartbeat_at; new tables requests,
   video_paths, quarantine.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "CATALOG_SCHEMA_VERSION",
    "metadata",
    "prompts_t",
    "quarantine_t",
    "requests_t",
    "runs_t",
    "schema_version_t",
    "units_t",
    "video_paths_t",
]

CATALOG_SCHEMA_VERSION = 2

metadata = MetaData()

schema_version_t = Table("schema_version", metadata, Column("version", Integer, nullable=False))

runs_t = Table(
    "runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("params", JSON, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(32), nullable=False),
    Column("summary", JSON),
    Column("host", String(256)),  # v2: where the run's process runs
    Column("pid", Integer),  # v2
    Column("heartbeat_at", DateTime),  # v2: last sign of life (Catalog.heartbeat_run)
)

prompts_t = Table(
    "prompts",
    metadata,
    Column("prompt_id", String(128), primary_key=True),
    Column("text", Text, nullable=False),
    Column("task", String(64), nullable=False),
    Column("first_seen", DateTime, nullable=False),
)

units_t = Table(
    "units",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stage", String(64), nullable=False),
    Column("video_id", String(128), nullable=False),
    Column("unit_key", String(256), nullable=False),
    Column("uri", Text),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("retryable", Boolean, nullable=False, default=False),
    Column("worker_id", String(256)),
    Column("claimed_at", DateTime),
    Column("updated_at", DateTime, nullable=False),
    Column("rows", BigInteger),  # v2: row count of the stage's primary table at mark_done
    Column("table_rows", JSON),  # v2: {table: rows} when the stage writes several tables
    Column("heartbeat_at", DateTime),  # v2: the claim's holder renewed it at (Catalog.renew_claims)
    UniqueConstraint("stage", "video_id", "unit_key", name="uq_units_stage_video_unit"),
)

# v2: the last time a run asked for a unit (also when it was skipped as done): "latest" means asked last.
requests_t = Table(
    "requests",
    metadata,
    Column("stage", String(64), primary_key=True),
    Column("video_id", String(128), primary_key=True),
    Column("unit_key", String(256), primary_key=True),
    Column("run_id", String(64)),
    Column("requested_at", DateTime, nullable=False),
    Column("n_requests", Integer, nullable=False, default=1),
)

# v2: every path a video's bytes were found at (duplicate content under several names).
video_paths_t = Table(
    "video_paths",
    metadata,
    Column("video_id", String(128), primary_key=True),
    Column("uri", Text, primary_key=True),
    Column("size_bytes", BigInteger),
    Column("first_seen", DateTime, nullable=False),
    Column("last_seen", DateTime, nullable=False),
)

# v2: files set aside by Store.quarantine (path relative to the store root).
quarantine_t = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(64), nullable=False),
    Column("video_id", String(128), nullable=False),
    Column("unit_key", String(256), nullable=False),
    Column("path", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("quarantined_at", DateTime, nullable=False),
)
