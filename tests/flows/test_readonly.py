"""Read-only stores: status-style reads, queries and exports work on a store whose files cannot be written;
anything that needs write access says so; nothing at all is written (no SQLite -wal/-shm, no temp files).

The store is made truly read-only for the reader process (chmod alone does not stop root, and tests run as
root here): as root, the reader runs in a private mount namespace where the store folder is bind-mounted
read-only (writes fail with EROFS), or, where mounts are not permitted, as the unprivileged user `nobody`
(for which the root-owned store is read-only); as any other user the files are made read-only with chmod.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from storage import Store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = 65534


def _tree(root: str) -> dict[str, tuple[int, int]]:
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            st = os.stat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def readonly_store(fx):
    """(store root, folder the reader may write to) with the store's files read-only for the reader."""
    base = tempfile.mkdtemp(prefix="pixelrefer-ro-", dir="/tmp")
    os.chmod(base, 0o755)
    root = os.path.join(base, "store")
    store = Store.open(root)
    fx.populate(store)
    store.catalog.start_run("archive", {"archive": "/videos"})
    store.catalog.mark_done("ingest", fx.VIDEO_A, "probe", rows=1)
    store.refresh_views()
    store.close()
    out = os.path.join(base, "out")
    os.makedirs(out)
    for folder, _, files in os.walk(root):
        os.chmod(folder, 0o755 if os.geteuid() == 0 else 0o555)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644 if os.geteuid() == 0 else 0o444)
    os.chmod(out, 0o777)
    yield root, out
    for folder, _, _ in os.walk(root):
        os.chmod(folder, 0o755)
    shutil.rmtree(base, ignore_errors=True)


def _can(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _run_as_reader(root: str, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a process for which the store at `root` is read-only (see module docstring)."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp", "TMPDIR": "/tmp"}
    cmd = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        bind = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        if shutil.which("unshare") and _can(["unshare", "-m", "sh", "-c", bind, root, "true"]):
            cmd = ["unshare", "-m", "sh", "-c", bind, root, *cmd]
        elif shutil.which("setpriv"):
            cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
        else:
            pytest.fail("running as root without unshare/mount nor setpriv: cannot make a read-only store")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_a_read_only_store_is_read_and_never_written(readonly_store, fx):
    root, out = readonly_store
    before = _tree(root)
    code = textwrap.dedent(f"""
        import json, os, sys
        from storage import ReadOnlyStoreError, Store, StoreError, table_from_records
        from storage.export import export_store
        from storage.query import run_query
        root, out, result = {root!r}, {out!r}, {{}}
        assert not os.access(root, os.W_OK), "the test store must not be writable by this process"
        try:
            Store.open(root)
        except ReadOnlyStoreError as exc:
            result["writable_open"] = str(exc)
        store = Store.open(root, read_only=True)
        result["counts"] = store.catalog.stage_counts()
        result["runs"] = [r.effective_status for r in store.catalog.runs()]
        result["rows"] = run_query(store.db_path, "SELECT count(*) FROM latest_object_frames")[1][0][0]
        result["captions"] = store.read_table("object_captions").num_rows
        result["export"] = sorted(os.listdir(export_store(store, "csv", os.path.join(out, "csv"))))
        for name, call in (("write", lambda: store.write_unit("videos", {fx.VIDEO_A!r}, "probe", None)),
                           ("refresh", store.refresh_views), ("verify", lambda: store.verify(repair=True)),
                           ("claim", lambda: store.catalog.claim_unit("track", "v", "k", "w"))):
            try:
                call()
                result[name] = "wrote!"
            except ReadOnlyStoreError as exc:
                result[name] = str(exc)
        result["verify"] = store.verify().ok
        store.close()
        print(json.dumps(result))
    """)
    proc = _run_as_reader(root, code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "is read-only" in result["writable_open"] and "read_only=True" in result["writable_open"]
    assert result["counts"] == {"ingest": {"done": 1}} and result["runs"] == ["running"]
    assert result["rows"] == 10 and result["captions"] == 4
    assert result["export"] == ["descriptions.csv", "object_frames.csv", "objects.csv", "videos.csv"]
    assert "writing videos unit 'probe' needs write access" in result["write"]
    assert "refreshing the views needs write access" in result["refresh"]
    assert "claiming a unit needs write access" in result["claim"]
    assert _tree(root) == before  # not one file created, changed or removed (no -wal, -shm, temp, lock)


def test_cli_query_and_export_on_a_read_only_store(readonly_store):
    root, out = readonly_store
    before = _tree(root)
    code = textwrap.dedent(f"""
        import sys
        from flows.cli import main
        rc1 = main(["query", "--store", {root!r}, "--format", "csv", "SELECT count(*) AS n FROM latest_objects"])
        rc2 = main(["export", "--store", {root!r}, "--format", "coco-json", "--out", {out + '/c.json'!r}])
        print("rcs", rc1, rc2)
    """)
    proc = _run_as_reader(root, code)
    assert proc.returncode == 0, proc.stderr
    assert "n\n4\n" in proc.stdout and "rcs 0 0" in proc.stdout, proc.stdout + proc.stderr
    assert _tree(root) == before
