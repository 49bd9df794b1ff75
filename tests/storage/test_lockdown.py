"""SQL that is read-only in fact: user SQL reads the store's views and nothing else on the machine."""

import os
import time

import duckdb
import pytest

from storage import QueryError, ReadOnlyQueryError, StoreError
from storage.errors import QueryTimeoutError
from storage.lockdown import QueryLimits, lock_down
from storage.query import run_query, stream_query

SLOW = "SELECT sum(hash(i)) FROM range(100000000000) AS t(i)"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("root:x:0:0:TOPSECRET\n")
    return str(path)


def hostile(root: str, secret: str) -> dict[str, str]:
    return {
        "read_text": f"SELECT * FROM read_text('{secret}')",
        "read_text_passwd": "SELECT * FROM read_text('/etc/passwd')",
        "read_blob": f"SELECT * FROM read_blob('{secret}')",
        "read_csv": f"SELECT * FROM read_csv('{secret}', header = false)",
        "replacement_scan": f"SELECT * FROM '{secret}'",
        "read_parquet_elsewhere": "SELECT * FROM read_parquet('/tmp/**/*.parquet')",
        "glob_root": "SELECT * FROM glob('/*')",
        "environ": "SELECT * FROM read_text('/proc/self/environ')",
        "catalog_in_store": f"SELECT * FROM read_blob('{root}/catalog.sqlite')",
        "traversal": f"SELECT * FROM read_text('{root}/object_frames/../catalog.sqlite')",
        "relative_traversal": "SELECT * FROM read_text('object_frames/../../../../etc/passwd')",
        "small_table_files": f"SELECT * FROM read_parquet('{root}/objects/*/*.parquet')",
        "sniff": f"SELECT * FROM sniff_csv('{secret}')",
    }


@pytest.mark.parametrize("name", sorted(hostile("r", "s")))
def test_nothing_outside_the_store_data_can_be_read(populated, secret, name):
    sql = hostile(populated.root, secret)[name]
    with pytest.raises(QueryError) as info:
        run_query(populated.db_path, sql)
    assert "TOPSECRET" not in str(info.value) and "root:x:" not in str(info.value)
    assert any(m in str(info.value) for m in ("disabled by configuration", "No files found", "does not exist"))


def test_writes_and_attaches_are_refused_and_write_nothing(populated, tmp_path):
    target = tmp_path / "leak.csv"
    inside = os.path.join(populated.root, "object_frames", "leak.csv")
    for sql in (f"COPY (SELECT 1) TO '{target}'", f"COPY (SELECT 1) TO '{inside}'",
                f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{inside}'", f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
                "SET enable_external_access = true", "SET lock_configuration = false", "RESET allowed_directories"):
        with pytest.raises(ReadOnlyQueryError):
            run_query(populated.db_path, sql)
    assert not target.exists() and not os.path.exists(inside) and not (tmp_path / "x.duckdb").exists()


def test_a_locked_connection_cannot_be_unlocked(populated, secret):
    """Beneath the statement check: DuckDB itself refuses to change the settings once locked."""
    con = duckdb.connect()
    try:
        lock_down(con, populated.root)
        for sql in ("SET enable_external_access = true", "SET memory_limit = '100GB'",
                    "SET allowed_directories = ['/']", "SET lock_configuration = false"):
            with pytest.raises(duckdb.Error, match="locked|while database is running"):
                con.execute(sql)
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            con.execute(f"SELECT * FROM read_text('{secret}')")
    finally:
        con.close()


def test_the_store_views_and_macros_still_work_locked_down(populated, fx):
    assert run_query(populated.db_path, "SELECT count(*) FROM object_frames")[1] == [(12,)]
    assert run_query(populated.db_path, "SELECT count(*) FROM latest_object_frames")[1] == [(10,)]
    assert run_query(populated.db_path, f"SELECT count(*) FROM video_frames('{fx.VIDEO_A}')")[1] == [(10,)]
    assert run_query(populated.db_path, "SELECT count(*) FROM objects")[1] == [(5,)]


def test_read_table_filters_are_one_predicate_on_a_locked_connection(populated, tmp_path):
    target = tmp_path / "x.csv"
    for bad in (f"1=1; COPY (SELECT 1) TO '{target}'", "color = 'red' UNION ALL SELECT * FROM objects",
                "(SELECT count(*) FROM read_text('/etc/passwd')) > 0", "1=1 -- everything"):
        with pytest.raises(StoreError, match="reading objects with filter"):
            populated.read_table("objects", bad)
    assert not target.exists()
    assert populated.read_table("objects", "color = 'red' AND t_start >= 1").num_rows == 2


def test_a_query_past_its_time_limit_is_interrupted(populated):
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="time limit of 0.5 s"):
        run_query(populated.db_path, SLOW, timeout_s=0.5, limits=QueryLimits(threads=1))
    assert time.monotonic() - started < 10
    assert run_query(populated.db_path, "SELECT 1")[1] == [(1,)]  # the next query runs normally


def test_memory_limit_is_applied(populated):
    with stream_query(populated.db_path, "SELECT current_setting('memory_limit')",
                      limits=QueryLimits(memory_limit="300MB", threads=1)) as result:
        (limit,), = result.rows()
    assert limit.replace(" ", "").upper().startswith(("286.1MIB", "300.0MB", "300MB"))
