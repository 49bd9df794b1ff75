"""storage.atomic.atomic_path: files and folders appear complete or not at all; failures leave nothing."""

import os

import fsspec
import pytest

from storage.atomic import atomic_path


def test_a_file_appears_only_when_the_block_succeeds(tmp_path):
    final = tmp_path / "sub" / "data.bin"
    with atomic_path(final) as tmp:
        assert os.path.dirname(tmp) == str(final.parent) and os.path.basename(tmp).startswith(".tmp-")
        with open(tmp, "wb") as fh:
            fh.write(b"new")
        assert not final.exists()  # not before the block ends
    assert final.read_bytes() == b"new"
    with pytest.raises(RuntimeError, match="boom"), atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("boom")
    assert final.read_bytes() == b"new"  # untouched
    assert os.listdir(final.parent) == ["data.bin"]  # temporary removed


def test_a_folder_replaces_the_old_folder_whole(tmp_path):
    out = tmp_path / "export"
    for content in ("one", "two"):
        with atomic_path(out, suffix="") as tmp:
            os.makedirs(tmp)
            (tmp_path / tmp / "a.txt").write_text(content)
            if content == "two":
                (tmp_path / tmp / "b.txt").write_text(content)
    assert sorted(os.listdir(out)) == ["a.txt", "b.txt"] and (out / "a.txt").read_text() == "two"
    with pytest.raises(ValueError), atomic_path(out, suffix="") as tmp:
        os.makedirs(tmp)
        (tmp_path / tmp / "c.txt").write_text("x")
        raise ValueError
    assert sorted(os.listdir(out)) == ["a.txt", "b.txt"]
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_fsspec_filesystems_move_the_temporary_key():
    fs = fsspec.filesystem("memory")
    final = "/atomic-test/objects/k.parquet"
    with atomic_path(final, fs) as tmp:
        assert tmp.startswith("/atomic-test/objects/.tmp-")
        with fs.open(tmp, "wb") as fh:
            fh.write(b"abc")
    assert fs.cat(final) == b"abc"
    with pytest.raises(OSError), atomic_path(final, fs) as tmp:
        with fs.open(tmp, "wb") as fh:
            fh.write(b"zzz")
        raise OSError("network")
    assert fs.cat(final) == b"abc" and fs.ls("/atomic-test/objects", detail=False) == ["/atomic-test/objects/k.parquet"]
    fs.rm("/atomic-test", recursive=True)
