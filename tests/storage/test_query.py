import datetime as dt
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
    if "embed(" in text:  # needs `pixelrefer query`'s embed(): run and checked in tests/flows/test_search_sql.py
        return
    columns, rows = run_query(populated.db_path, text)
    assert columns


def _run(store, name):
    cols, rows = run_query(store.db_path, (SQL_DIR / name).read_text())
    return [dict(zip(cols, r, strict=True)) for r in rows]


def _approx(rows):
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def test_example_queries_answer_their_question(populated, fx):
    """Values worked out by hand from tests/support/store_rows.py:populate (latest trackings: A 'track-new'
    with red 1 [0, 0.3] moving left, green 2 [0.1, 0.4], red 3 [2, 3] moving right; B 'track-new' with
    red 1 [1, 2] moving at 170 degrees; A's object 1 captioned twice, the later caption wins)."""
    a, b = fx.VIDEO_A, fx.VIDEO_B
    car, bus = "A red car driving left.", "A red bus."
    assert _run(populated, "colored_objects_moving_left.sql") == _approx([
        dict(video_id=a, object_id=1, t_start=0.0, t_end=0.3, duration_s=0.3, mean_speed_px_s=5.0,
             direction_deg=180.0, caption=car),
        dict(video_id=b, object_id=1, t_start=1.0, t_end=2.0, duration_s=1.0, mean_speed_px_s=5.0,
             direction_deg=170.0, caption=bus),
    ])
    assert _run(populated, "cooccurring_objects.sql") == _approx([
        dict(video_id=a, object_a=1, object_b=2, color_a="red", color_b="green", overlap_from=0.1,
             overlap_to=0.3, overlap_s=0.2)])
    assert _run(populated, "descriptions_for_prompt.sql") == [
        dict(video_id=a, uri="/videos/cam3.mp4", object_ids=[1], task="caption", answer=car, model_id="tiny",
             created_at=fx.T0 + dt.timedelta(minutes=5)),
        dict(video_id=b, uri="/videos/cam4.mp4", object_ids=[1], task="caption", answer=bus, model_id="tiny",
             created_at=fx.T0)]
    assert _run(populated, "object_counts_per_video.sql") == [
        dict(video_id=a, uri="/videos/cam3.mp4", duration_s=5.0, n_objects=3, n_captioned=1, colors=["green", "red"]),
        dict(video_id=b, uri="/videos/cam4.mp4", duration_s=5.0, n_objects=1, n_captioned=1, colors=["red"])]
    assert _run(populated, "object_timeline.sql") == _approx([
        dict(frame_idx=i, t=i / 10, x0=20.0 - 2 * i, y0=5.0, x1=24.0 - 2 * i, y1=8.0, cx=22.0 - 2 * i, cy=6.5,
             area=12, score=0.9) for i in range(4)])
    assert _run(populated, "objects_in_time_window.sql") == _approx([
        dict(video_id=a, object_id=1, color="red", t_start=0.0, t_end=0.3, visible_from=0.0, visible_to=0.3,
             caption=car),
        dict(video_id=a, object_id=2, color="green", t_start=0.1, t_end=0.4, visible_from=0.1, visible_to=0.4,
             caption=None),
        dict(video_id=a, object_id=3, color="red", t_start=2.0, t_end=3.0, visible_from=2.0, visible_to=3.0,
             caption=None),
        dict(video_id=b, object_id=1, color="red", t_start=1.0, t_end=2.0, visible_from=1.0, visible_to=2.0,
             caption=bus)])
    assert _run(populated, "objects_mentioning_words.sql") == _approx([
        dict(video_id=a, object_id=1, t_start=0.0, t_end=0.3, color="red", task="caption",
             prompt="Describe this object.", answer=car)])
    box = dict(y0=5.0, y1=8.0)
    assert _run(populated, "frames_in_time_window.sql") == _approx([
        dict(object_id=1, frame_idx=0, t=0.0, x0=20.0, x1=24.0, **box),
        dict(object_id=1, frame_idx=1, t=0.1, x0=18.0, x1=22.0, **box),
        dict(object_id=2, frame_idx=1, t=0.1, x0=2.0, x1=6.0, **box),
        dict(object_id=1, frame_idx=2, t=0.2, x0=16.0, x1=20.0, **box),
        dict(object_id=2, frame_idx=2, t=0.2, x0=2.0, x1=6.0, **box)])
    assert _run(populated, "objects_by_label.sql") == _approx([
        dict(video_id=a, uri="/videos/cam3.mp4", object_id=1, label="car", label_score=0.75, t_start=0.0,
             t_end=0.3, duration_s=0.3, caption=car),
        dict(video_id=a, uri="/videos/cam3.mp4", object_id=3, label="car", label_score=0.25, t_start=2.0,
             t_end=3.0, duration_s=1.0, caption=None)])
    # A new example gets its values asserted here too (semantic_search.sql: tests/flows/test_search_sql.py).
    assert len(list(SQL_DIR.glob("*.sql"))) == 10


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
