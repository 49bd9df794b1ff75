"""--where predicates: exactly one boolean expression over objects/videos columns, parsed by DuckDB."""

import pytest

from storage import PredicateError, StoreError
from storage.predicates import select_objects, validate_predicate

ACCEPTED = [
    "color = 'red'",
    "color = 'a--b' AND videos.fps >= 10",  # '--' inside a string is not a comment
    "objects.t_start BETWEEN 1 AND 2 OR lower(color) IN ('red', 'blue')",
    "uri LIKE '%cam3%' AND NOT (mean_speed_px_s < 1.5)",
    "CASE WHEN color IS NULL THEN false ELSE true END",
    "list_contains(['red', 'green'], color)",
]

REFUSED = {
    "union": ("1=0) UNION ALL SELECT 'x', 'y', 1, 'z' FROM objects --", "comments"),
    "union_no_comment": ("1=0) UNION ALL SELECT 'x', 'y', 1, (SELECT 'z'", "set operations"),
    "comment": ("color = 'red' -- AND fps > 10", "comments"),
    "block_comment": ("color = 'red' /* hidden */", "comments"),
    "semicolon": ("color = 'red'; DELETE FROM objects", "';'"),
    "subquery": ("object_id IN (SELECT object_id FROM objects)", "subqueries"),
    "table_function": ("(SELECT count(*) FROM read_text('/etc/passwd')) > 0", "subqueries"),
    "exists": ("EXISTS (SELECT 1)", "subqueries"),
    "group_by": ("1=1) GROUP BY (1", "only one boolean expression"),
    "order_by": ("1=1) ORDER BY (1", "only one boolean expression"),
    "limit": ("1=1) LIMIT (1", "only one boolean expression"),
    "unknown_column": ("colour = 'red'", "unknown column 'colour'"),
    "wrong_table": ("descriptions.answer = 'x'", "not a column"),
    "window": ("row_number() OVER () = 1", "window functions"),
    "star": ("COLUMNS(*) IS NOT NULL", "'*'"),
    "parameter": ("color = ?", "parameters"),
    "empty": ("   ", "empty"),
    "syntax": ("color = = 'red'", "syntax error"),
}


@pytest.mark.parametrize("text", ACCEPTED)
def test_boolean_expressions_over_the_columns_are_accepted(text):
    assert validate_predicate(text) == f"({text})"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_anything_else_is_refused_with_a_reason(name):
    text, reason = REFUSED[name]
    with pytest.raises(PredicateError) as info:
        validate_predicate(text)
    assert isinstance(info.value, StoreError)
    assert reason in str(info.value) and "--where" in str(info.value)


def test_select_objects_gives_the_latest_trackings_matching_objects(populated, fx):
    table = select_objects(populated, "color = 'red' AND videos.uri LIKE '%cam3%'")
    assert table.column_names == ["video_id", "track_key", "object_id", "uri"]
    assert table.to_pylist() == [
        dict(video_id=fx.VIDEO_A, track_key=fx.NEW_TRACK, object_id=1, uri="/videos/cam3.mp4"),
        dict(video_id=fx.VIDEO_A, track_key=fx.NEW_TRACK, object_id=3, uri="/videos/cam3.mp4"),
    ]
    assert select_objects(populated, None).num_rows == 4  # every object of the latest trackings


def test_select_objects_refuses_before_anything_is_written(populated):
    before = populated.catalog.units()
    for bad in ("1=0) UNION ALL SELECT 'x', 'fake-track', 1, 'fake.mp4' FROM objects --", "t_start",
                "video_id = 'x'"):
        with pytest.raises(PredicateError):
            select_objects(populated, bad)
    assert populated.catalog.units() == before
    with pytest.raises(PredicateError, match="not a boolean expression"):
        select_objects(populated, "t_start + 1")
    with pytest.raises(PredicateError, match="Ambiguous"):
        select_objects(populated, "video_id = 'x'")
