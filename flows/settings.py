"""One validated settings object for a pipeline run; environment variables are read here and nowhere else.

`RunSettings` (pydantic, frozen, unknown fields refused) is what the CLI builds from its arguments and
what the flows receive as their single parameter, so Prefect validates a deployment's JSON parameters
with the same rules. `EnvSettings` (pydantic-settings) reads the `PIXELREFER_*` environment variables.
Invalid values raise `SettingsError` naming the setting and what is allowed.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ENV", "EnvSettings", "RunSettings", "SettingsError", "default_worker_id", "env_settings"]

# Every environment variable the product reads, with its meaning (shown by `pixelrefer run --help`).
ENV = {
    "PIXELREFER_STORE": "store directory used when --store is not given",
    "PIXELREFER_CATALOG_URL": "SQLAlchemy URL of the catalog (default: SQLite file inside the store)",
    "PIXELREFER_CACHE_DIR": "local folder where remote (fsspec) videos are copied before decoding",
    "PIXELREFER_WORKER_ID": "name of this worker in the catalog's claims (default: host:pid:random)",
    "PIXELREFER_GPU_LIMIT": "name of the Prefect concurrency limit around model work (default pixelrefer-gpu)",
    "PIXELREFER_CLAIM_LEASE_S": "seconds without a heartbeat after which another worker takes a claim over (120)",
}

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
DEFAULT_GPU_LIMIT = "pixelrefer-gpu"
DEFAULT_CLAIM_LEASE_S = 120.0  # = storage.catalog.DEFAULT_LEASE_S; heartbeats come every quarter of it


class SettingsError(ValueError):
    """A run setting is invalid; the message names the setting and says what is allowed."""


class EnvSettings(BaseSettings):
    """The `PIXELREFER_*` environment (empty values count as unset)."""

    model_config = SettingsConfigDict(env_prefix="PIXELREFER_", env_ignore_empty=True, extra="ignore")

    store: str | None = None
    catalog_url: str | None = None
    cache_dir: str | None = None
    worker_id: str | None = None
    gpu_limit: str | None = None
    claim_lease_s: float | None = None


def env_settings() -> EnvSettings:
    """The environment as it is now (read on every call: tests and long-lived workers change it)."""
    return EnvSettings()


def default_worker_id() -> str:
    """`host:pid:random` unless PIXELREFER_WORKER_ID is set; unique per process (and per flow run)."""
    return env_settings().worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


PositiveInt = Annotated[int, Field(ge=1)]


class RunSettings(BaseModel):
    """Configuration of one archive run or describe run.

    store: store root folder. archive: folder or fsspec URL (None for describe-only runs).
    model: HF hub id or local checkpoint dir of PixelRefer(-Lite) (None with profile 'tiny': a tiny random
    checkpoint is created under the store); model_revision: hub revision (branch, tag or commit).
    sam2: SAM 2 checkpoint id/path. segmenter: 'sam2' | 'motion' (None: sam2 when SAM 2 weights are
    given, motion under profile 'tiny'). sample_fps: frames per second fed to the tracker (None: every
    frame). seeds_file: YAML/JSON file of user boxes/points that start tracks (flows/seeds.py).
    frames_per_object: frames shown to the describe model per object. where: SQL predicate over
    objects/videos selecting what a describe run describes. claim_lease_s: how long a worker's claims
    outlive its last heartbeat before another worker takes them over.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(min_length=1)
    archive: str | None = None
    catalog_url: str | None = None
    prompts_file: str | None = None
    model: str | None = None
    model_revision: str | None = None
    sam2: str | None = None
    segmenter: Literal["sam2", "motion"] | None = None
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    profile: Literal["tiny"] | None = None
    sample_fps: float | None = Field(2.0, gt=0)
    seeds_file: str | None = None
    frames_per_object: PositiveInt = 4
    max_new_tokens: PositiveInt = 32
    batch_size: PositiveInt = 8
    max_pairs_per_video: PositiveInt = 10
    where: str | None = None
    cache_dir: str | None = None
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    gpu_limit: str = DEFAULT_GPU_LIMIT
    claim_lease_s: float = Field(DEFAULT_CLAIM_LEASE_S, ge=5)
    seed: int = 0
    worker_id: str = Field(default_factory=default_worker_id)

    @model_validator(mode="after")
    def _consistent(self) -> RunSettings:
        if self.model is None and self.profile != "tiny":
            raise ValueError(
                "model: give --model (a Hugging Face id such as Alibaba-DAMO-Academy/PixelRefer-Lite-2B or a "
                "local checkpoint folder), or --profile tiny for the offline tiny model"
            )
        if self.model is not None and _looks_local(self.model) and not os.path.isdir(self.model):
            raise ValueError(f"model: {self.model} is not a folder (expected a PixelRefer checkpoint)")
        if self.sam2 is not None and _looks_local(self.sam2) and not os.path.exists(self.sam2):
            raise ValueError(f"sam2: {self.sam2} does not exist")
        if self.resolved_segmenter == "sam2" and self.sam2 is None and self.profile != "tiny":
            raise ValueError("segmenter: sam2 needs --sam2 ID|PATH (or --profile tiny, or --segmenter motion)")
        return self

    @classmethod
    def create(cls, **values: Any) -> RunSettings:
        """Validated settings from keyword values; raises SettingsError (one line per problem)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @classmethod
    def from_env(cls, **values: Any) -> RunSettings:
        """Settings from keyword values (None = not given), filling store, catalog, cache folder and the
        concurrency limit's name from PIXELREFER_* when not given."""
        env = env_settings()
        given = {k: v for k, v in values.items() if v is not None}
        for name in ("store", "catalog_url", "cache_dir", "gpu_limit", "claim_lease_s"):
            if name not in given and getattr(env, name):
                given[name] = getattr(env, name)
        if "store" not in given:
            raise SettingsError("store: a store directory is required (--store DIR or PIXELREFER_STORE)")
        return cls.create(**given)

    @property
    def resolved_segmenter(self) -> str:
        """The segmenter kind actually used: explicit choice, else sam2 with real weights, else motion."""
        if self.segmenter:
            return self.segmenter
        if self.sam2 is not None and self.profile != "tiny":
            return "sam2"
        return "motion"

    @property
    def resolved_catalog_url(self) -> str | None:
        return self.catalog_url or env_settings().catalog_url

    @property
    def resolved_cache_dir(self) -> str:
        return self.cache_dir or env_settings().cache_dir or os.path.join(self.store, "cache", "remote")

    def as_params(self) -> dict[str, Any]:
        """JSON-ready dict of the settings (recorded with each run in the catalog; deployment
        parameters); worker_id left out, since every flow run gets its own."""
        return self.model_dump(mode="json", exclude={"worker_id"})

    def replace(self, **changes: Any) -> RunSettings:
        """A validated copy with `changes` applied."""
        return RunSettings.create(**{**self.model_dump(), **changes})


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(msg if not where or msg.startswith(f"{where}:") else f"{where}: {msg}")
    return "; ".join(lines)


def _looks_local(ref: str) -> bool:
    """A model reference is a local path when it starts like one or exists; otherwise a hub id."""
    return ref.startswith((".", "/", "~")) or os.path.exists(ref) or ref.count("/") > 1
