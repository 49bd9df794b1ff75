"""Fixtures of the flow tests: one Prefect test server per session, a tiny generated archive, and one
clean reference run of the pipeline that other tests compare against."""

from __future__ import annotations

import os
import tempfile

# Prefect reads its home at import: keep its database and result cache out of ~/.prefect.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="pixelrefer-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import pyarrow as pa  # noqa: E402
import pytest  # noqa: E402
import store_rows  # noqa: E402

from flows.demo_archive import TEST_SCENES, make_archive  # noqa: E402
from flows.settings import RunSettings  # noqa: E402

# Columns that legitimately differ between two runs producing the same data.
VOLATILE = {"probed_at", "tracked_at", "created_at", "run_id", "latency_ms"}
TABLES = ("videos", "objects", "object_frames", "descriptions")


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("archive"))
    make_archive(folder, TEST_SCENES, corrupt=True)
    return folder


def make_tiny_settings(store: str, archive: str | None = None, **changes) -> RunSettings:
    """Tiny, fast settings: tiny model, motion segmenter, short answers."""
    values = dict(store=store, archive=archive, profile="tiny", segmenter="motion", sample_fps=6.0,
                  frames_per_object=2, max_new_tokens=4, batch_size=4)
    values.update(changes)
    return RunSettings(**values)


def take_snapshot(store_root: str) -> dict[str, list[dict]]:
    """Every table's rows (volatile columns dropped), sorted: equal snapshots = same tables."""
    import pyarrow.parquet as pq

    out = {}
    for table in TABLES:
        folder = os.path.join(store_root, table)
        files = sorted(
            os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".parquet")
        ) if os.path.isdir(folder) else []
        rows = []
        for path in files:
            t: pa.Table = pq.read_table(path, partitioning=None)
            keep = [c for c in t.column_names if c not in VOLATILE]
            rows += t.select(keep).to_pylist()
        out[table] = sorted(rows, key=repr)
    return out


@pytest.fixture(scope="session")
def clean_run(prefect_server, archive, tmp_path_factory):
    """One uninterrupted run of the archive flow: (store root, summary dict, snapshot)."""
    from flows.archive import process_archive

    store = str(tmp_path_factory.mktemp("clean-store"))
    summary = process_archive(make_tiny_settings(store, archive))
    return store, summary, take_snapshot(store)


@pytest.fixture
def tiny_settings():
    """make_tiny_settings(store, archive=None, **changes) -> RunSettings."""
    return make_tiny_settings


@pytest.fixture
def snapshot():
    """take_snapshot(store_root) -> {table: sorted rows without volatile columns}."""
    return take_snapshot


# The hand-made store of tests/support/store_rows.py, for the CLI tests that read a known store
# (query, export, verify, release, read-only stores).
@pytest.fixture
def store(tmp_path):
    from storage import Store

    s = Store.open(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def populated(store):
    store_rows.populate(store)
    store.refresh_views()
    return store


@pytest.fixture
def fx():
    """tests/support/store_rows.py: the hand-made store's constants and row builders."""
    return store_rows
