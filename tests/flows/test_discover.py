"""Discovering archives: local folders (recursive, by extension) and fsspec URLs copied to a local cache."""

from __future__ import annotations

import os

import fsspec

from flows.stages.discover import discover_videos, localize, source_for_uri

EXTS = (".mp4", ".mov")


def test_local_folder_is_walked_recursively_by_extension(tmp_path):
    for rel in ("a/x.mp4", "a/b/y.MOV", "a/notes.txt", "c/.hidden.mp4", "z.mp4"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
    found = discover_videos(str(tmp_path), EXTS, str(tmp_path / "cache")).sources
    assert [os.path.relpath(s.uri, tmp_path) for s in found] == ["a/b/y.MOV", "a/x.mp4", "z.mp4"]
    assert all(s.local_path == s.uri and s.size_bytes == 4 for s in found)


def test_remote_archive_is_listed_with_fsspec_and_copied_once(tmp_path, archive):
    fs = fsspec.filesystem("memory")
    with open(os.path.join(archive, "a", "left.mp4"), "rb") as fh:
        data = fh.read()
    fs.pipe("/cams/day1/left.mp4", data)
    fs.pipe("/cams/readme.txt", b"x")
    cache = str(tmp_path / "cache")
    (source,) = discover_videos("memory://cams", EXTS, cache).sources
    assert source.uri == "memory:///cams/day1/left.mp4" and source.size_bytes == len(data)
    assert not os.path.exists(source.local_path) and source.local_path.startswith(cache)
    local = localize(source)
    with open(local, "rb") as fh:
        assert fh.read() == data
    mtime = os.path.getmtime(local)
    assert localize(source) == local and os.path.getmtime(local) == mtime  # not copied again
    assert source_for_uri(source.uri, cache).local_path == local


def test_dangling_and_looping_symlinks_are_skipped_with_their_reason(tmp_path):
    (tmp_path / "ok.mp4").write_bytes(b"data")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "dangling.mp4")
    os.symlink(tmp_path / "loop-b.mp4", tmp_path / "loop-a.mp4")
    os.symlink(tmp_path / "loop-a.mp4", tmp_path / "loop-b.mp4")
    os.symlink(tmp_path / "ok.mp4", tmp_path / "alias.mp4")
    found = discover_videos(str(tmp_path), EXTS, str(tmp_path / "cache"))
    assert [os.path.basename(s.uri) for s in found.sources] == ["alias.mp4", "ok.mp4"]
    skipped = {os.path.basename(e.uri): e.reason for e in found.skipped}
    assert set(skipped) == {"dangling.mp4", "loop-a.mp4", "loop-b.mp4"}
    assert "cannot be followed" in skipped["dangling.mp4"] and "gone.mp4" in skipped["dangling.mp4"]
    assert "symbolic links" in skipped["loop-a.mp4"].lower() or "loop" in skipped["loop-a.mp4"].lower()
