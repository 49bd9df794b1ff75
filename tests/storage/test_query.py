import json
from pathlib import Path

import pytest

from storage import QueryError, ReadOnlyQueryError, StoreError
from storage.query import format_csv, format_json, format_table, run_query

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

REFUSED = {
    "CREATE": "CREATE TABLE t AS SELECT 1",
    "INSERT": "INSERT INTO objects SELECT * FROM objects",
    "UPDATE": "UPDATE objects SET color = 'x'",
    "DELETE": "DELETE FROM objects",
    "COPY": "COPY (SELECT 1) TO '/tmp/pixelrefer-should-not-exist.csv'",
    "ATTACH": "ATTACH '/tmp/pixelrefer-other.duckdb' AS other",
    "DETACH": "DETACH other",
    "LOAD": "INSTALL httpfs",
    "SET": "SET threads = 1",
    "PRAGMA": "PRAGMA enable_profiling",
    "EXPORT": "EXPORT DATABASE '/tmp/pixelrefer-export'",
    "CALL": "CALL checkpoint()",
    "DROP": "DROP VIEW objects",
    "ALTER": "ALTER VIEW objects RENAME TO o",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_write_statements_are_refused_naming_their_type(populated, kind):
    with pytest.raises(ReadOnlyQueryError, match=f"refused {kind} statement"):
        run_query(populated.db_path, REFUSED[kind])


def test_hidden_writes_are_refused_and_nothing_runs(populated, tmp_path):
    target = tmp_path / "leak.csv"
    with pytest.raises(ReadOnlyQueryError, match="COPY"):
        run_query(populated.db_path, f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'")
    with pytest.raises(ReadOnlyQueryError, match="COPY"):
        run_query(populated.db_path, f"SELECT 1; COPY (SELECT 1) TO '{target}'")
    assert not target.exists()


def test_reads_are_allowed(populated):
    for sql in ("SELECT 1", "FROM objects LIMIT 1", "DESCRIBE objects", "SHOW TABLES", "SUMMARIZE objects",
                "EXPLAIN SELECT * FROM objects", "-- comment\nWITH x AS (SELECT 1 AS a) SELECT a FROM x"):
        columns, _ = run_query(populated.db_path, sql)
        assert columns
    columns, rows = run_query(populated.db_path, "SELECT 1 AS a; SELECT 2 AS b")
    assert (columns, rows) == (["b"], [(2,)])


def test_bad_sql_carries_duckdb_message(populated):
    with pytest.raises(QueryError, match="syntax error") as info:
        run_query(populated.db_path, "SELEC * FROM objects")
    assert "Parser Error" in info.value.duckdb_message
    with pytest.raises(QueryError, match="nope"):
        run_query(populated.db_path, "SELECT * FROM nope")
    with pytest.raises(QueryError, match="no SQL statement"):
        run_query(populated.db_path, "  ")


def test_missing_views_database(tmp_path):
    with pytest.raises(StoreError, match="no views database"):
        run_query(tmp_path / "views.duckdb", "SELECT 1")


@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_every_example_query_runs(populated, path):
    text = path.read_text()
    assert text.startswith("--"), "each example starts with a comment header"
    columns, rows = run_query(populated.db_path, text)
    assert columns


def test_example_queries_answer_their_question(populated, fx):
    def run(name):
        cols, rows = run_query(populated.db_path, (SQL_DIR / name).read_text())
        return [dict(zip(cols, r, strict=True)) for r in rows]

    left = run("colored_objects_moving_left.sql")
    assert [(r["video_id"], r["object_id"]) for r in left] == [(fx.VIDEO_A, 1), (fx.VIDEO_B, 1)]
    window = run("objects_in_time_window.sql")
    assert len(window) == 4
    words = run("objects_mentioning_words.sql")
    assert [(r["video_id"], r["object_id"]) for r in words] == [(fx.VIDEO_A, 1)]
    co = run("cooccurring_objects.sql")
    assert [(r["object_a"], r["object_b"]) for r in co] == [(1, 2)]
    timeline = run("object_timeline.sql")
    assert [r["frame_idx"] for r in timeline] == [0, 1, 2, 3]
    prompt = run("descriptions_for_prompt.sql")
    assert {r["answer"] for r in prompt} == {"A red car driving left.", "A red bus."}


def test_formatters():
    cols = ["id", "answer", "ids"]
    rows = [(1, "x" * 100, [1, 2]), (22, None, None)]
    table = format_table(cols, rows, max_width=20)
    lines = table.splitlines()
    assert lines[0].startswith("id | answer")
    assert "x" * 17 + "..." in lines[2] and "x" * 18 not in lines[2]
    assert lines[2].startswith(" 1 |") and lines[3].startswith("22 |")
    assert lines[-1] == "(2 rows)"
    uri = "/data/archive/cameras/north-gate/2026-11-20/cam3_evening.mp4"
    clipped = format_table(["uri"], [(uri,)], max_width=30).splitlines()[2]
    assert len(clipped) == 30 and clipped.startswith("/data/") and clipped.endswith("cam3_evening.mp4")
    assert format_csv(cols, rows).splitlines() == ["id,answer,ids", f"1,{'x' * 100},\"[1, 2]\"", "22,,"]
    assert json.loads(format_json(cols, rows))[0]["ids"] == [1, 2]
