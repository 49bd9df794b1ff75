"""A store on object storage: a real S3-compatible server (moto, loopback) reached through s3fs, with the catalog
on SQLite or PostgreSQL and the views file on the local disk. It must behave like a local store: units
written whole, refreshes, views, queries under the same lockdown, healing, and several processes agreeing
on one store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage import SCHEMAS, Store, StoreError, table_from_records
from storage.query import run_query


def _s3fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def _keys(root: str) -> list[str]:
    """Every object under a store URL, relative to it."""
    fs = _s3fs()
    prefix = root.removeprefix("s3://")
    return sorted(p[len(prefix) + 1 :] for p in fs.find(prefix))


def _rows(store: Store, sql: str) -> list[tuple]:
    return sorted(run_query(store.db_path, sql, root=store.root)[1], key=repr)


QUERIES = [
    "SELECT * EXCLUDE (probed_at) FROM videos",
    "SELECT video_id, track_key, n_objects FROM latest_tracks",
    "SELECT video_id, object_id, color FROM latest_objects",
    "SELECT video_id, track_key, object_id, frame_idx, x0, mask_rle FROM object_frames",
    "SELECT * FROM object_timeline('" + "a" * 64 + "', 1)",
    "SELECT count(*), sum(area) FROM video_frames('" + "a" * 64 + "')",
    "SELECT video_id, object_ids, answer FROM latest_descriptions",
]


def test_a_store_on_s3_holds_the_same_tables_and_answers_the_same_queries_as_a_local_one(s3_store, populated, fx):
    fx.populate(s3_store)
    report = s3_store.refresh_views()
    assert {t: n for t, n in report.files.items() if n} == {"videos": 2, "objects": 3, "object_frames": 3,
                                                             "descriptions": 3}
    for table in SCHEMAS:
        remote, local = s3_store.read_table(table), populated.read_table(table)
        assert remote.schema == local.schema
        assert sorted(remote.to_pylist(), key=repr) == sorted(local.to_pylist(), key=repr)
    for sql in QUERIES:
        assert _rows(s3_store, sql) == _rows(populated, sql), sql
    # the files are in the bucket, in the store's layout, and nothing else is (no temporaries)
    keys = _keys(s3_store.root)
    assert f"object_frames/video_id={fx.VIDEO_A}/{fx.NEW_TRACK}.parquet" in keys
    assert [k for k in keys if not k.startswith("_store/")] == sorted(
        f"{t}/video_id={v}/{k}.parquet" for t in SCHEMAS for v, k in s3_store.list_units(t))
    assert not os.path.exists(os.path.join(os.path.dirname(s3_store.db_path), "objects"))


def test_the_views_file_names_the_remote_root_and_a_plain_duckdb_client_with_s3_access_reads_it(s3_store, fx):
    fx.populate(s3_store)
    s3_store.refresh_views()
    con = duckdb.connect(s3_store.db_path, read_only=True)
    try:
        info = dict(con.execute("SELECT key, value FROM _pixelrefer.info").fetchall())
        assert info["root"] == s3_store.root
        con.register_filesystem(_s3fs())  # the client's own S3 access (httpfs + a secret, elsewhere)
        rows = con.execute(f"SELECT frame_idx FROM object_timeline('{fx.VIDEO_A}', 1) ORDER BY 1").fetchall()
        assert rows == [(0,), (1,), (2,), (3,)]  # no file_search_path needed: the views name the bucket
    finally:
        con.close()


def test_user_sql_on_an_s3_store_reads_that_stores_files_and_nothing_else(s3_store, s3_server, fx, tmp_path):
    fx.populate(s3_store)
    s3_store.refresh_views()
    fs = _s3fs()
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"secret": [42]}), buf)
    other = s3_store.root + "-other"  # a neighbour prefix that starts like ours
    fs.pipe_file(f"{other}/object_frames/video_id=x/k.parquet", buf.getvalue().to_pybytes())
    if not fs.exists("pixelrefer-private"):
        s3_server.create_bucket("pixelrefer-private")
    fs.pipe_file("pixelrefer-private/k.parquet", buf.getvalue().to_pybytes())
    (tmp_path / "local.csv").write_text("a\n1\n")
    con = s3_store.connect()
    try:
        assert con.execute("SELECT count(*) FROM object_frames").fetchone()[0] == 12
        for sql in (f"SELECT * FROM read_parquet('{other}/object_frames/video_id=x/k.parquet')",
                    "SELECT * FROM read_parquet('s3://pixelrefer-private/k.parquet')",
                    "SELECT * FROM glob('s3://pixelrefer-test/*')",
                    f"SELECT * FROM read_parquet('{s3_store.root}/object_frames/../../pixelrefer-private/k.parquet')",
                    f"SELECT * FROM read_csv('{tmp_path / 'local.csv'}')",
                    "SELECT * FROM read_text('/etc/passwd')"):
            with pytest.raises(duckdb.Error, match="Permission|disabled"):
                con.execute(sql).fetchall()
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
    finally:
        con.close()


def test_a_unit_write_that_fails_half_way_leaves_the_previous_file_and_no_other_object(s3_store, fx, monkeypatch):
    rows = fx.frame_rows(fx.VIDEO_A, fx.NEW_TRACK, 1, [0, 1, 2, 3], 20, -2)
    s3_store.write_unit("object_frames", fx.VIDEO_A, fx.NEW_TRACK, table_from_records("object_frames", rows))
    before = _keys(s3_store.root)

    real = pq.write_table

    def breaks_half_way(table, where, **kwargs):
        real(table.slice(0, 1), where, **kwargs)  # some bytes are out, then the writer dies
        raise OSError("disk gone")

    monkeypatch.setattr(pq, "write_table", breaks_half_way)
    with pytest.raises(OSError, match="disk gone"):
        s3_store.write_unit("object_frames", fx.VIDEO_A, fx.NEW_TRACK,
                            table_from_records("object_frames", rows + rows[:1]))
    monkeypatch.undo()
    assert _keys(s3_store.root) == before
    assert s3_store.check_unit("object_frames", fx.VIDEO_A, fx.NEW_TRACK, expected_rows=4).ok


def test_a_reader_sees_the_old_or_the_new_unit_never_a_part_while_it_is_rewritten(s3_store, fx):
    """Rewrites of one unit with 1..30 objects, read concurrently through another S3 client."""
    frames = list(range(40))
    versions = [table_from_records("object_frames", [r for o in range(1, n + 1) for r in
                                                     fx.frame_rows(fx.VIDEO_A, "k", o, frames, 1, 0)])
                for n in range(1, 31)]
    s3_store.write_unit("object_frames", fx.VIDEO_A, "k", versions[0])
    path = s3_store.unit_path("object_frames", fx.VIDEO_A, "k")
    seen, errors, done = set(), [], threading.Event()

    def read() -> None:
        fs = _s3fs()
        while not done.is_set():
            try:
                seen.add(pq.read_table(pa.BufferReader(fs.cat_file(path))).num_rows)
            except Exception as exc:  # a partial object would not parse
                errors.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for table in versions[1:]:
            s3_store.write_unit("object_frames", fx.VIDEO_A, "k", table)
    finally:
        done.set()
        reader.join(timeout=60)
    assert errors == []
    assert seen and seen <= {40 * n for n in range(1, 31)}


def test_another_writers_units_are_seen_at_once_no_listing_is_cached(s3_store, fx):
    assert s3_store.list_units("objects") == []
    other = Store.open(s3_store.root, catalog_url=s3_store.catalog.url, db_path=s3_store.db_path + ".other")
    other._fs = _s3fs()  # another process's filesystem object
    other.write_unit("objects", fx.VIDEO_B, fx.NEW_TRACK, table_from_records("objects", [
        fx.object_row(fx.VIDEO_B, fx.NEW_TRACK, 1, 1.0, 2.0, "red", 170.0, tracked_at=fx.T0)]))
    assert s3_store.has_unit("objects", fx.VIDEO_B, fx.NEW_TRACK)
    assert s3_store.list_units("objects") == [(fx.VIDEO_B, fx.NEW_TRACK)]
    assert s3_store.refresh_views().files["objects"] == 1
    other.close()


def test_incremental_refresh_verify_and_quarantine_on_s3(s3_store, fx):
    fx.populate(s3_store)
    s3_store.refresh_views()
    s3_store.catalog.mark_done("describe", fx.VIDEO_B, "desc-v1", rows=1)
    s3_store.write_unit("descriptions", fx.VIDEO_B, "desc-v2", table_from_records("descriptions", [
        fx.description_row(fx.VIDEO_B, fx.NEW_TRACK, [1], "desc-v2", "Describe.", "caption", "A bus.", fx.T0)]))
    s3_store.catalog.mark_done("describe", fx.VIDEO_B, "desc-v2", rows=1)
    report = s3_store.refresh_views()
    assert report.incremental and (report.added, report.changed, report.removed) == (1, 0, 0)
    assert s3_store.refresh_views().unchanged
    _s3fs().pipe_file(s3_store.unit_path("descriptions", fx.VIDEO_B, "desc-v1").removeprefix("s3://"), b"not parquet")
    found = s3_store.verify()
    assert [(f.kind, f.unit_key) for f in found.findings if f.stage == "describe" and f.video_id == fx.VIDEO_B] == \
        [("unreadable", "desc-v1")]
    s3_store.verify(repair=True)
    assert s3_store.catalog.unit_state("describe", fx.VIDEO_B, "desc-v1") == "pending"
    keys = _keys(s3_store.root)
    assert any(k.startswith(f"quarantine/descriptions/video_id={fx.VIDEO_B}/desc-v1.") and k.endswith(".parquet")
               for k in keys)
    assert f"descriptions/video_id={fx.VIDEO_B}/desc-v1.parquet" not in keys
    assert _rows(s3_store, f"SELECT describe_key FROM descriptions WHERE video_id = '{fx.VIDEO_B}'") == [("desc-v2",)]


def test_a_remote_store_needs_a_shared_catalog_and_a_local_views_file(s3_root, tmp_path):
    with pytest.raises(StoreError, match="catalog"):
        Store.open(s3_root, db_path=str(tmp_path / "views.duckdb"))
    with pytest.raises(StoreError, match="local"):
        Store.open(s3_root, catalog_url=f"sqlite:///{tmp_path}/c.sqlite", db_path=s3_root + "/views.duckdb")
    with pytest.raises(StoreError, match="no store"):
        Store.open(s3_root, catalog_url=f"sqlite:///{tmp_path}/c.sqlite", db_path=str(tmp_path / "v.duckdb"),
                   create=False)


def test_processes_opening_a_new_s3_store_at_once_agree_on_its_identity(s3_root, tmp_path, new_catalog_url):
    """4 processes x 6 rounds open the same brand-new S3 store at the same moment: one identity per store
    (a conditional PUT decides; without it the last writer would win and the views of the others would
    refuse the store as another one)."""
    rounds, workers = 6, 4
    urls = [new_catalog_url() for _ in range(rounds)]
    script = textwrap.dedent(f"""
        import json, os, sys, time
        from storage import Store
        urls, base, me, root = {urls!r}, {str(tmp_path)!r}, sys.argv[1], {s3_root!r}
        ids = []
        for r, url in enumerate(urls):
            open(os.path.join(base, f"ready-{{r}}-{{me}}"), "w").close()
            while not os.path.exists(os.path.join(base, f"go-{{r}}")):
                time.sleep(0.0005)
            s = Store.open(f"{{root}}/round-{{r}}", catalog_url=url, db_path=os.path.join(base, me, f"v{{r}}.duckdb"))
            ids.append(s.store_id())
            s.close()
        print(json.dumps(ids))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for n in range(workers)]
    try:
        for r in range(rounds):
            deadline = time.monotonic() + 120
            while len(list(tmp_path.glob(f"ready-{r}-*"))) < workers and time.monotonic() < deadline:
                time.sleep(0.002)
            (tmp_path / f"go-{r}").touch()
        results = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    ids = []
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        ids.append(json.loads(out))
    assert all(len(set(per_round)) == 1 for per_round in zip(*ids, strict=True))
    for r, per_round in enumerate(zip(*ids, strict=True)):
        assert _keys(f"{s3_root}/round-{r}") == sorted(["_store/store_id", f"_store/store-{per_round[0]}.id"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    """`pixelrefer ARGS` in a new process (its environment: the S3 endpoint, credentials, PGPASSWORD)."""
    return subprocess.run([sys.executable, "-m", "flows", *args], capture_output=True, text=True, timeout=300)


def test_query_and_status_commands_work_on_an_s3_store_with_its_catalog_url(s3_store, populated, fx, tmp_path):
    """`--store s3://...` with `--catalog-url`: query --refresh builds this machine's views file and answers from
    the store's Parquet on S3; status reads the catalog (SQLite or PostgreSQL) and the views."""
    fx.populate(s3_store)
    s3_store.catalog.mark_done("track", fx.VIDEO_B, "track-x", rows=1)
    url, root = s3_store.catalog.url, s3_store.root
    env_cache = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path / "machine-cache")  # this "machine"'s own views folder
    try:
        res = _cli("query", "--store", root, "--catalog-url", url, "--refresh", "--format", "json",
                   "SELECT video_id, object_id, color FROM latest_objects ORDER BY ALL")
        assert res.returncode == 0, res.stderr
        got = sorted((r["video_id"], r["object_id"], r["color"]) for r in json.loads(res.stdout))
        populated.refresh_views()  # the same rows in a local store: what the S3 store must answer
        want = sorted(tuple(r) for r in run_query(populated.db_path, "SELECT video_id, object_id, color FROM latest_objects")[1])
        assert got == want and len(got) == 4
        assert list((tmp_path / "machine-cache" / "pixelrefer" / "views").glob("*/views.duckdb"))
        res = _cli("status", "--store", root, "--catalog-url", url)
        assert res.returncode == 0, res.stderr
        assert f"store {root}" in res.stdout
        assert [line.split() for line in res.stdout.splitlines() if line.strip().startswith("track ")] == \
            [["track", "done", "1"]]
    finally:
        if env_cache is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = env_cache
