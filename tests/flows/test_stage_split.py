"""Tracking on one machine, describing on another: an archive run with describe=False (`--no-describe`, the
CPU pool's deployment) tracks and makes thumbnails only; a describe run (the GPU pool's deployment) then
writes exactly what one full run writes."""

from __future__ import annotations

import logging
import os


def _units(root: str, table: str) -> int:
    folder = os.path.join(root, table)
    return sum(f.endswith(".parquet") for _, _, fs in os.walk(folder) for f in fs)


def test_a_tracking_only_run_then_a_describe_run_equal_one_full_run(prefect_server, archive, clean_run, tmp_path,
                                                                    tiny_settings, snapshot, caplog):
    from flows.archive import process_archive
    from flows.commands._pipeline import run_pipeline
    from flows.describe import describe_objects

    root = str(tmp_path / "store")
    tracking_only = tiny_settings(root, archive, describe=False)
    summary = process_archive(tracking_only)
    after_tracking = snapshot(root)
    assert after_tracking["objects"] and _units(root, "object_thumbnails") > 0
    assert not after_tracking["descriptions"] and _units(root, "description_vectors") == 0
    assert any("--no-describe" in n for n in summary.notes)

    with caplog.at_level(logging.INFO):
        assert run_pipeline("run", tracking_only, "archive") == 0  # its work is done: no flow, no model
    assert any(r.getMessage().startswith("nothing to do") for r in caplog.records)

    described = describe_objects(tiny_settings(root))
    assert described.describe_units_done > 0
    full = clean_run[2]
    now = snapshot(root)
    for table in ("objects", "object_frames", "descriptions"):
        assert now[table] == full[table], table
    assert _units(root, "description_vectors") == _units(clean_run[0], "description_vectors") > 0
