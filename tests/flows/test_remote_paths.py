"""A store on object storage keeps what must sit on a local disk (copied videos, the tiny model, the views
file) in this machine's cache, one folder per store URL, never under the URL itself."""

from __future__ import annotations

import os

from flows.runtime import tiny_model_dir
from flows.settings import RunSettings


def test_a_remote_store_caches_videos_and_the_tiny_model_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PIXELREFER_CACHE_DIR", raising=False)
    a = RunSettings(store="s3://bucket/a", archive="s3://bucket/videos", profile="tiny")
    b = RunSettings(store="s3://bucket/b", archive="s3://bucket/videos", profile="tiny")
    for path in (a.resolved_cache_dir, tiny_model_dir(a.store, create=False)):
        assert "://" not in path and path.startswith(str(tmp_path / "cache") + os.sep)
    assert a.resolved_cache_dir != b.resolved_cache_dir  # one folder per store
    assert tiny_model_dir(a.store, create=False) != tiny_model_dir(b.store, create=False)
    local = RunSettings(store=str(tmp_path / "store"), archive="s3://bucket/videos", profile="tiny")
    assert local.resolved_cache_dir == str(tmp_path / "store" / "cache" / "remote")
    monkeypatch.setenv("PIXELREFER_CACHE_DIR", str(tmp_path / "mine"))
    assert RunSettings(store="s3://bucket/a", archive="x", profile="tiny").resolved_cache_dir == str(tmp_path / "mine")
