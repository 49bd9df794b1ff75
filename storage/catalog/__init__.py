"""The catalog: runs, prompts, the state of every unit of work, requests, video paths, quarantined files.

`Catalog(url, read_only=False)` is the entry point (storage.catalog.core); the tables live in
storage.catalog.tables, schema creation and migration in storage.catalog.schema, claims and leases in
storage.catalog.units, typed records in storage.catalog.records.
"""

from storage.catalog.core import Catalog
from storage.catalog.records import (
    DEFAULT_LEASE_S,
    RUN_LEASE_S,
    QuarantineRecord,
    RequestRecord,
    RunRecord,
    UnitRecord,
    VideoPathRecord,
)
from storage.catalog.tables import (
    CATALOG_SCHEMA_VERSION,
    prompts_t,
    quarantine_t,
    requests_t,
    runs_t,
    schema_version_t,
    units_t,
    video_paths_t,
)

UNIT_STATES = ("pending", "running", "done", "failed")

__all__ = [
    "CATALOG_SCHEMA_VERSION",
    "DEFAULT_LEASE_S",
    "RUN_LEASE_S",
    "UNIT_STATES",
    "Catalog",
    "QuarantineRecord",
    "RequestRecord",
    "RunRecord",
    "UnitRecord",
    "VideoPathRecord",
    "prompts_t",
    "quarantine_t",
    "requests_t",
    "runs_t",
    "schema_version_t",
    "units_t",
    "video_paths_t",
]
