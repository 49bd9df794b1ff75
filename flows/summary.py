"""The summary of a run: counts per stage, failures and notes with reasons, for the console and as markdown.

A video counts once however many paths it has in the archive (duplicates are listed as such) and each
unit of work counts once; what another worker held is named, not just counted.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from flows.stages.outcomes import DescribeOutcome, IngestOutcome, Status, TrackOutcome

__all__ = ["Failure", "RunSummary", "summarize"]


class Failure(BaseModel):
    """Something that could not be done: `who` (path or video id), the stage, and why."""

    who: str
    stage: str
    reason: str


class RunSummary(BaseModel):
    """What a run did (videos_* count distinct videos; paths_* count files of the archive)."""

    run_id: str
    kind: str
    seconds: float = 0.0
    paths_found: int = 0
    paths_duplicate: int = 0
    videos_found: int = 0
    videos_done: int = 0
    videos_skipped: int = 0
    videos_failed: int = 0
    videos_partial: int = 0
    videos_busy: int = 0
    objects: int = 0
    descriptions_written: int = 0
    describe_units_done: int = 0
    describe_units_skipped: int = 0
    describe_units_busy: int = 0
    failures: list[Failure] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    busy: list[str] = Field(default_factory=list)
    stage_seconds: dict[str, float] = Field(default_factory=dict)  # wall time of each phase of the run

    def fail(self, who: str, stage: str, reason: str) -> None:
        self.failures.append(Failure(who=who, stage=stage, reason=reason))

    def text(self) -> str:
        dup = f" ({self.paths_duplicate} path(s) with the same bytes as another)" if self.paths_duplicate else ""
        lines = [
            f"run {self.run_id} ({self.kind}) finished in {self.seconds:.1f} s",
            f"  videos: {self.videos_found} found{dup}, {self.videos_done} done, {self.videos_skipped} skipped "
            f"(already done), {self.videos_failed} failed, {self.videos_busy} left to other workers"
            + (f"; {self.videos_partial} partial (only their first frames decode)" if self.videos_partial else ""),
            f"  objects: {self.objects} tracked in the processed videos",
            f"  descriptions: {self.descriptions_written} written ({self.describe_units_done} units done, "
            f"{self.describe_units_skipped} already done"
            + (f", {self.describe_units_busy} left to other workers" if self.describe_units_busy else "") + ")",
        ]
        if self.stage_seconds:
            lines.append("  time: " + ", ".join(f"{stage} {sec:.1f} s" for stage, sec in self.stage_seconds.items()))
        if self.busy:
            lines.append("  left to other workers:")
            lines += [f"    - {b}" for b in self.busy]
        if self.notes:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notes]
        if self.failures:
            lines.append("  failures:")
            lines += [f"    - {f.who} [{f.stage}]: {f.reason}" for f in self.failures]
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            ("videos found", self.videos_found), ("paths with duplicate content", self.paths_duplicate),
            ("videos done", self.videos_done), ("videos skipped (already done)", self.videos_skipped),
            ("videos failed", self.videos_failed), ("videos partial", self.videos_partial),
            ("videos left to other workers", self.videos_busy), ("objects", self.objects),
            ("descriptions written", self.descriptions_written), ("seconds", round(self.seconds, 1)),
        ]
        out = [f"# PixelRefer {self.kind} run `{self.run_id}`", "", "| what | count |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in rows]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.failures:
            out += ["", "## Failures", "", "| video | stage | reason |", "|---|---|---|"]
            out += [f"| {f.who} | {f.stage} | {f.reason.replace('|', '/')} |" for f in self.failures]
        return "\n".join(out)


def summarize(summary: RunSummary, ingested: Sequence[IngestOutcome], tracked: Sequence[TrackOutcome],
              described: Sequence[DescribeOutcome]) -> RunSummary:
    """Fill `summary`'s counts from the stages' outcomes (a video counts as done when any stage did work)."""
    track_by_video = {t.video_id: t for t in tracked}
    desc_done = {d.video_id for d in described if d.status == Status.DONE}
    uris = {i.video_id: i.uri for i in ingested if i.video_id}
    summary.paths_found = len(ingested)
    summary.paths_duplicate = sum(1 for i in ingested if i.duplicate_of)
    primaries = [i for i in ingested if not i.duplicate_of]
    summary.videos_found = len(primaries) if ingested else len(track_by_video)
    for ing in primaries:
        if ing.status == Status.FAILED:
            summary.videos_failed += 1
            summary.fail(ing.uri, "ingest", ing.error or "unknown error")
            continue
        if ing.status == Status.BUSY:
            summary.videos_busy += 1
            summary.busy.append(f"{ing.uri} [ingest]")
            continue
        if ing.partial_reason:
            summary.videos_partial += 1
        tr = track_by_video.get(ing.video_id) if ing.video_id else None
        if tr is None or tr.status == Status.FAILED:
            summary.videos_failed += 1
            summary.fail(ing.uri, "track", (tr.error if tr else None) or "not tracked")
        elif tr.status == Status.BUSY:
            summary.videos_busy += 1
            summary.busy.append(f"{ing.uri} [track]")
        elif ing.status == Status.DONE or tr.status == Status.DONE or ing.video_id in desc_done:
            summary.videos_done += 1
        else:
            summary.videos_skipped += 1
    summary.objects = sum(t.n_objects for t in tracked if t.status in (Status.DONE, Status.SKIPPED))
    summary.notes += [note for t in tracked for note in t.skipped_seeds]
    add_describe_counts(summary, described, uris)
    return summary


def add_describe_counts(summary: RunSummary, described: Sequence[DescribeOutcome],
                        uris: dict[str, str] | None = None) -> None:
    uris = uris or {}
    summary.descriptions_written += sum(d.n_rows for d in described if d.status == Status.DONE)
    summary.describe_units_done += sum(1 for d in described if d.status == Status.DONE)
    summary.describe_units_skipped += sum(1 for d in described if d.status == Status.SKIPPED)
    summary.describe_units_busy += sum(1 for d in described if d.status == Status.BUSY)
    for d in described:
        who = uris.get(d.video_id, d.video_id[:12])
        if d.status == Status.FAILED:
            summary.fail(who, "describe", f"prompt {d.prompt_id}: {d.error or ''}")
        elif d.status == Status.BUSY:
            summary.busy.append(f"{who} [describe, prompt {d.prompt_id}]")
