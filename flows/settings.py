"""One validated settings object for a pipeline run; environment variables are read here and nowhere else.

`RunSettings` is what the CLI builds from its arguments and what the flows receive as their single
parameter (a frozen dataclass, so Prefect can show and serialise it). Paths are kept as strings.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import uuid
from dataclasses import dataclass, field

__all__ = ["ENV", "RunSettings", "SettingsError", "default_worker_id", "env_value"]

# Every environment variable the product reads, with its meaning (shown by `pixelrefer run --help`).
ENV = {
    "PIXELREFER_STORE": "store directory used when --store is not given",
    "PIXELREFER_CATALOG_URL": "SQLAlchemy URL of the catalog (default: SQLite file inside the store)",
    "PIXELREFER_CACHE_DIR": "local folder where remote (fsspec) videos are copied before decoding",
    "PIXELREFER_WORKER_ID": "name of this worker in the catalog's claims (default: host:pid:random)",
    "PIXELREFER_GPU_LIMIT": "name of the Prefect concurrency limit around model work (default pixelrefer-gpu)",
}

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
SEGMENTERS = ("sam2", "motion")
PROFILES = ("tiny",)


class SettingsError(ValueError):
    """A run setting is invalid; the message names the setting and says what is allowed."""


def env_value(name: str, default: str | None = None) -> str | None:
    """The value of one of the `ENV` variables (empty strings count as unset)."""
    if name not in ENV:
        raise KeyError(f"{name} is not a PixelRefer environment variable")
    value = os.environ.get(name, "")
    return value or default


def default_worker_id() -> str:
    """`host:pid:random` unless PIXELREFER_WORKER_ID is set; unique per process."""
    return env_value("PIXELREFER_WORKER_ID") or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunSettings:
    """Configuration of one archive run or describe run.

    store: store root folder. archive: folder or fsspec URL (None for describe-only runs).
    model: HF hub id or local checkpoint dir of PixelRefer-Lite (None with profile 'tiny': a tiny random
    checkpoint is created under the store). sam2: SAM 2 checkpoint id/path. segmenter: 'sam2' | 'motion'
    (None: sam2 when SAM 2 weights are given, motion under profile 'tiny').
    sample_fps: frames per second fed to the tracker (None: every frame).
    seeds_file: YAML/JSON file of user boxes/points that start tracks (flows/seeds.py).
    frames_per_object: frames shown to the describe model per object (select_frames k).
    """

    store: str
    archive: str | None = None
    catalog_url: str | None = None
    prompts_file: str | None = None
    model: str | None = None
    model_revision: str | None = None
    sam2: str | None = None
    segmenter: str | None = None
    device: str = "cpu"
    profile: str | None = None
    sample_fps: float | None = 2.0
    seeds_file: str | None = None
    frames_per_object: int = 4
    max_new_tokens: int = 32
    batch_size: int = 8
    max_pairs_per_video: int = 10
    where: str | None = None
    cache_dir: str | None = None
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    gpu_limit: str = "pixelrefer-gpu"
    seed: int = 0
    worker_id: str = field(default_factory=default_worker_id)

    def __post_init__(self) -> None:
        if not self.store:
            raise SettingsError("store: a store directory is required (--store DIR or PIXELREFER_STORE)")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise SettingsError(f"device: {self.device!r} is not 'cpu', 'cuda' or 'cuda:N'")
        if self.profile is not None and self.profile not in PROFILES:
            raise SettingsError(f"profile: {self.profile!r} is not one of {PROFILES}")
        if self.segmenter is not None and self.segmenter not in SEGMENTERS:
            raise SettingsError(f"segmenter: {self.segmenter!r} is not one of {SEGMENTERS}")
        if self.sample_fps is not None and not self.sample_fps > 0:
            raise SettingsError(f"sample_fps: must be > 0, got {self.sample_fps}")
        for name in ("frames_per_object", "max_new_tokens", "batch_size", "max_pairs_per_video"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.model is None and self.profile != "tiny":
            raise SettingsError(
                "model: give --model (a Hugging Face id such as Alibaba-DAMO-Academy/PixelRefer-Lite-2B or a "
                "local checkpoint folder), or --profile tiny for the offline tiny model"
            )
        if self.model is not None and _looks_local(self.model) and not os.path.isdir(self.model):
            raise SettingsError(f"model: {self.model} is not a folder (expected a PixelRefer-Lite checkpoint)")
        if self.sam2 is not None and _looks_local(self.sam2) and not os.path.exists(self.sam2):
            raise SettingsError(f"sam2: {self.sam2} does not exist")
        if self.resolved_segmenter == "sam2" and self.sam2 is None and self.profile != "tiny":
            raise SettingsError("segmenter: sam2 needs --sam2 ID|PATH (or --profile tiny, or --segmenter motion)")

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
        return self.catalog_url or env_value("PIXELREFER_CATALOG_URL")

    @property
    def resolved_cache_dir(self) -> str:
        return self.cache_dir or env_value("PIXELREFER_CACHE_DIR") or os.path.join(self.store, "cache", "remote")

    def as_params(self) -> dict:
        """Plain dict of the settings (recorded with each run in the catalog); worker_id left out."""
        params = dataclasses.asdict(self)
        params.pop("worker_id")
        params["extensions"] = list(self.extensions)
        return params

    def replace(self, **changes) -> RunSettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, **values) -> RunSettings:
        """Settings from keyword values, filling store/catalog from PIXELREFER_* when not given."""
        if not values.get("store"):
            values["store"] = env_value("PIXELREFER_STORE") or ""
        if not values.get("catalog_url"):
            values["catalog_url"] = env_value("PIXELREFER_CATALOG_URL")
        if not values.get("gpu_limit"):
            values["gpu_limit"] = env_value("PIXELREFER_GPU_LIMIT")
        return cls(**{k: v for k, v in values.items() if v is not None})


def _looks_local(ref: str) -> bool:
    """A model reference is a local path when it starts like one or exists; otherwise a hub id."""
    return ref.startswith((".", "/", "~")) or os.path.exists(ref) or ref.count("/") > 1
