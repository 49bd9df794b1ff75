"""The run's thumbnails phase (right after tracking) and `--report DIR`: the report refreshed at the end of
a run, linked from the summary and the run's Prefect artifacts."""

from __future__ import annotations

import os
import shutil

import pyarrow.parquet as pq

from flows.cli import main
from storage import Store

from .conftest import make_tiny_settings


def test_run_made_thumbnails_for_every_tracked_object(clean_run):
    store_dir, _, snap = clean_run
    store = Store.open(store_dir, read_only=True)
    tracks = store.list_units("objects")
    assert tracks and store.list_units("object_thumbnails") == tracks
    for vid, key in tracks:
        assert store.catalog.unit_state("thumbnails", vid, key) == "done"
        n = pq.read_metadata(store.unit_path("objects", vid, key)).num_rows
        assert pq.read_metadata(store.unit_path("object_thumbnails", vid, key)).num_rows == n
    store.close()


def test_run_with_report_refreshes_it_and_links_it(clean_run, archive, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.archive import process_archive

    store_dir = str(tmp_path / "store")
    shutil.copytree(clean_run[0], store_dir)
    out = str(tmp_path / "report")
    summary = process_archive(make_tiny_settings(store_dir, archive, report_dir=out))
    index = os.path.join(out, "index.html")
    assert os.path.isfile(index)
    assert f"report: file://{index}" in summary.notes
    assert f'title="{summary.run_id}"' in open(index).read()  # this run is in the report's run history
    with get_client(sync_client=True) as client:
        links = [a for a in client.read_artifacts() if a.key == "pixelrefer-archive-report"]
    assert any(f"(file://{index})" in str(a.data) for a in links)  # a link artifact: "[text](url)"


def test_run_command_refuses_a_report_folder_of_other_files(archive, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    code = main(["run", archive, "--store", str(tmp_path / "s"), "--profile", "tiny", "--report", str(folder)])
    assert code == 2 and "holds other files" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "s" / "videos")
