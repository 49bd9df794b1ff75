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

from flows.concepts import ConceptSetting

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
    sam2: SAM 2 checkpoint id/path. segmenter: 'sam2' | 'motion' | 'sam3' (None: sam3 when concepts
    are given, sam2 when SAM 2 weights are, else motion under profile 'tiny'). concepts: what SAM 3 finds
    by name (with optional per-concept thresholds); discover: 'auto' (automatic masks, no labels),
    'concepts' (only the named concepts; the default with concepts) or 'both'; propagator: what carries
    masks between keyframes ('sam3' or 'sam2'); sam3: SAM 3 checkpoint (default facebook/sam3).
    sample_fps: frames per second fed to the tracker (None: every
    frame). seeds_file: YAML/JSON file of user boxes/points that start tracks (flows/seeds.py).
    frames_per_object: frames shown to the describe model per object. where: SQL predicate over
    objects/videos selecting what a describe run describes. claim_lease_s: how long a worker's claims
    outlive its last heartbeat before another worker takes them over. report_dir: a folder the run
    refreshes the static report in when it ends (`--report DIR`; None: no report). describe: False: an
    archive run stops after tracking and thumbnails (`--no-describe`: a CPU pool's deployment), and a describe
    run (e.g. the GPU pool's deployment) describes what it tracked. embedder: what embeds
    every description for search (pixelrefer_core.embedding.ids: "wordllama", "sentence-transformers:HUB_ID"
    or a folder); None: the embedder the store's vectors were made with, else wordllama.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(min_length=1)
    archive: str | None = None
    catalog_url: str | None = None
    prompts_file: str | None = None
    model: str | None = None
    model_revision: str | None = None
    sam2: str | None = None
    segmenter: Literal["sam2", "motion", "sam3"] | None = None
    sam3: str | None = None
    concepts: tuple[ConceptSetting, ...] = ()
    discover: Literal["auto", "concepts", "both"] | None = None
    propagator: Literal["sam3", "sam2"] = "sam3"
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
    report_dir: str | None = None
    describe: bool = True
    embedder: str | None = None
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
        self._check_concepts()
        if self.embedder is not None:
            from pixelrefer_core.embedding.ids import parse_ref

            parse_ref(self.embedder)  # UnknownEmbedderError (a ValueError) names the forms allowed
        return self

    def _check_concepts(self) -> None:
        if self.concepts and self.segmenter in ("motion", "sam2"):
            raise ValueError(f"concepts: finding named concepts needs SAM 3, not --segmenter {self.segmenter} "
                             "(leave --segmenter out, or give --segmenter sam3)")
        if self.concepts and self.discover == "auto":
            raise ValueError("discover: 'auto' finds objects without names; drop --concepts or use "
                             "--discover concepts|both")
        if not self.concepts and (self.segmenter == "sam3" or self.discover in ("concepts", "both")):
            raise ValueError("concepts: SAM 3 discovery needs what to find: --concepts 'person, car' or "
                             "--concepts-file FILE")
        names = [c.name for c in self.concepts]
        if len(set(names)) != len(names):
            raise ValueError(f"concepts: {sorted({n for n in names if names.count(n) > 1})} listed twice")
        needs_sam2 = self.propagator == "sam2" or self.discover == "both"
        if self.concepts and needs_sam2 and self.sam2 is None and self.profile != "tiny":
            raise ValueError("sam2: --propagator sam2 and --discover both need SAM 2 weights (--sam2 ID|PATH)")
        if self.sam3 is not None and _looks_local(self.sam3) and not os.path.exists(self.sam3):
            raise ValueError(f"sam3: {self.sam3} does not exist")
        if self.report_dir is not None and os.path.exists(self.report_dir) and not os.path.isdir(self.report_dir):
            raise ValueError(f"report_dir: {self.report_dir} is a file, not a folder")

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
        """The segmenter kind actually used: explicit choice, else sam3 with concepts, sam2 with real
        weights, else motion."""
        if self.segmenter:
            return self.segmenter
        if self.concepts:
            return "sam3"
        if self.sam2 is not None and self.profile != "tiny":
            return "sam2"
        return "motion"

    @property
    def resolved_sam3(self) -> str | None:
        """The SAM 3 checkpoint: --sam3, else facebook/sam3 (None under the tiny profile's random SAM 3)."""
        return None if self.profile == "tiny" and self.sam3 is None else (self.sam3 or "facebook/sam3")

    def segmenter_options(self) -> dict[str, Any]:
        """Keyword options of `build_segmenter` / `segmenter_id_for` for the resolved kind."""
        if self.resolved_segmenter != "sam3":
            return {}
        from flows.concepts import concept_specs

        return {"concepts": concept_specs(self.concepts), "propagator": self.propagator,
                "discover": "both" if self.discover == "both" else "concepts", "sam2_checkpoint": self.sam2}

    @property
    def segmenter_checkpoint(self) -> str | None:
        kind = self.resolved_segmenter
        return self.resolved_sam3 if kind == "sam3" else self.sam2 if kind == "sam2" else None

    @property
    def resolved_catalog_url(self) -> str | None:
        return self.catalog_url or env_settings().catalog_url

    @property
    def resolved_cache_dir(self) -> str:
        if self.cache_dir or env_settings().cache_dir:
            return self.cache_dir or env_settings().cache_dir or ""
        from storage.remote import is_url, local_cache_dir  # light: no fsspec until a store is opened

        # copies of remote videos are read by local decoders: a remote store keeps them on this machine
        return local_cache_dir(self.store, "videos") if is_url(self.store) else os.path.join(self.store, "cache", "remote")

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
