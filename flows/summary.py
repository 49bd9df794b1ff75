"""The summary of a run: counts per stage, failures with reasons, rendered for the console and as markdown."""

from __future__ import annotations

from dataclasses import dataclass, field

from flows.stages.outcomes import DescribeOutcome, IngestOutcome, TrackOutcome

__all__ = ["RunSummary", "summarize"]


@dataclass
class RunSummary:
    """What a run did. videos_*: per video; failures: (uri or video_id, stage, reason)."""

    run_id: str
    kind: str
    seconds: float = 0.0
    videos_found: int = 0
    videos_done: int = 0
    videos_skipped: int = 0
    videos_failed: int = 0
    videos_busy: int = 0
    objects: int = 0
    descriptions_written: int = 0
    describe_units_done: int = 0
    describe_units_skipped: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__, failures=[list(f) for f in self.failures])

    def text(self) -> str:
        lines = [
            f"run {self.run_id} ({self.kind}) finished in {self.seconds:.1f} s",
            f"  videos: {self.videos_found} found, {self.videos_done} done, {self.videos_skipped} skipped "
            f"(already done), {self.videos_failed} failed, {self.videos_busy} left to other workers",
            f"  objects: {self.objects} tracked in the processed videos",
            f"  descriptions: {self.descriptions_written} written ({self.describe_units_done} units done, "
            f"{self.describe_units_skipped} already done)",
        ]
        if self.failures:
            lines.append("  failures:")
            lines += [f"    - {who} [{stage}]: {reason}" for who, stage, reason in self.failures]
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = [
            ("videos found", self.videos_found), ("videos done", self.videos_done),
            ("videos skipped (already done)", self.videos_skipped), ("videos failed", self.videos_failed),
            ("videos left to other workers", self.videos_busy), ("objects", self.objects),
            ("descriptions written", self.descriptions_written), ("seconds", round(self.seconds, 1)),
        ]
        out = [f"# PixelRefer {self.kind} run `{self.run_id}`", "", "| what | count |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in rows]
        if self.failures:
            out += ["", "## Failures", "", "| video | stage | reason |", "|---|---|---|"]
            out += [f"| {w} | {s} | {r.replace('|', '/')} |" for w, s, r in self.failures]
        return "\n".join(out)


def summarize(
    summary: RunSummary,
    ingested: list[IngestOutcome],
    tracked: list[TrackOutcome],
    described: list[DescribeOutcome],
) -> RunSummary:
    """Fill `summary`'s counts from the stages' outcomes (a video counts as done when any stage did work)."""
    track_by_video = {t.video_id: t for t in tracked}
    desc_done = {d.video_id for d in described if d.status == "done"}
    summary.videos_found = len(ingested) if ingested else len(track_by_video)
    for ing in ingested:
        if ing.status == "failed":
            summary.videos_failed += 1
            summary.failures.append((ing.uri, "ingest", ing.error or "unknown error"))
            continue
        if ing.status == "busy":
            summary.videos_busy += 1
            continue
        tr = track_by_video.get(ing.video_id)
        if tr is None or tr.status == "failed":
            summary.videos_failed += 1
            summary.failures.append((ing.uri, "track", (tr.error if tr else None) or "not tracked"))
        elif tr.status == "busy":
            summary.videos_busy += 1
        elif ing.status == "done" or tr.status == "done" or ing.video_id in desc_done:
            summary.videos_done += 1
        else:
            summary.videos_skipped += 1
    summary.objects = sum(t.n_objects for t in tracked if t.status in ("done", "skipped"))
    summary.descriptions_written = sum(d.n_rows for d in described if d.status == "done")
    summary.describe_units_done = sum(1 for d in described if d.status == "done")
    summary.describe_units_skipped = sum(1 for d in described if d.status == "skipped")
    summary.failures += [(d.video_id[:12], "describe", d.error or "") for d in described if d.status == "failed"]
    return summary
