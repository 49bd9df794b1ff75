"""Fixtures of the storage tests: small hand-made stores with real COCO RLE masks; catalogs on SQLite and on a
real PostgreSQL server; stores on a real S3-compatible server (moto), reached through s3fs."""

from __future__ import annotations

import itertools
import os

import pytest
import store_rows
from store_rows import populate

from storage import Store


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store.open(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def populated(store) -> Store:
    populate(store)
    store.refresh_views()
    return store


@pytest.fixture
def fx():
    """tests/support/store_rows.py (constants and row builders), since test files cannot import conftest."""
    return store_rows


def servers():
    """tests/support/servers.py: real servers (PostgreSQL, moto's S3, Prefect) on loopback."""
    import servers as module

    return module


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the session (Debian's binaries, loopback, password in PGPASSWORD); the
    PostgreSQL variants of the tests skip only where PostgreSQL is not installed."""
    bin_dir = servers().find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no initdb; set PIXELREFER_PG_BIN or apt-get install postgresql)")
    server = servers().PostgresServer(bin_dir)
    mp = pytest.MonkeyPatch()
    try:
        server.start()
        for name, value in server.env.items():
            mp.setenv(name, value)  # subprocesses of the tests inherit it too
        yield server
    finally:
        mp.undo()
        server.stop()


_DATABASES = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_catalog_url(request, tmp_path):
    """new_catalog_url() -> the URL of a new, empty catalog database (a new one per call): a SQLite file,
    or a new database on the session's PostgreSQL server. Every catalog test runs against both."""
    counter = iter(range(1_000_000))
    pg = request.getfixturevalue("pg_server") if request.param == "postgresql" else None

    def make() -> str:
        if pg is None:
            return f"sqlite:///{tmp_path / f'catalog-{next(counter)}.sqlite'}"
        return pg.create_database(f"catalog_{os.getpid()}_{next(_DATABASES)}")

    make.backend = request.param
    return make


@pytest.fixture
def s3_root(s3_server, request):
    """A new, empty store URL on the S3 server (one prefix per test)."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"s3://pixelrefer-test/{name}-{next(_DATABASES)}"


@pytest.fixture
def s3_store(s3_root, tmp_path, new_catalog_url):
    """A Store on S3 (catalog: SQLite or PostgreSQL, views file local)."""
    s = Store.open(s3_root, catalog_url=new_catalog_url(), db_path=str(tmp_path / "views" / "views.duckdb"))
    yield s
    s.close()


@pytest.fixture
def catalog_url(new_catalog_url) -> str:
    """The URL of one new, empty catalog database (see new_catalog_url)."""
    return new_catalog_url()


@pytest.fixture
def catalog(catalog_url):
    """A new Catalog on `catalog_url`."""
    from storage import Catalog

    c = Catalog(catalog_url)
    yield c
    c.dispose()
