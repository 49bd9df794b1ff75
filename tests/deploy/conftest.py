"""Fixtures of the deployment test: the real servers of a many-machine deployment on loopback (PostgreSQL
catalog, moto S3 store, Prefect server), each started once for the module, and helpers to talk to them.

The whole folder skips only where PostgreSQL's server binaries are absent (`make test` on a laptop without
them); CI installs them (apt-get install postgresql) and runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def servers():
    """tests/support/servers.py: real servers (PostgreSQL, moto's S3, Prefect) on loopback."""
    import servers as module

    return module


def pytest_collection_modifyitems(config, items):
    if servers().find_pg_bin() is not None:
        return
    skip = pytest.mark.skip(reason="PostgreSQL server binaries not found (apt-get install postgresql, or set "
                                   "PIXELREFER_PG_BIN): the deployment test needs a real PostgreSQL catalog")
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def deploy_servers():
    """(postgres, moto, prefect) servers, started for the module, stopped (folders removed) after it."""
    mod = servers()
    pg, s3, prefect = mod.PostgresServer(mod.find_pg_bin()), mod.MotoServer(), mod.PrefectServer()
    try:
        pg.start()
        s3.start()
        prefect.start()
        yield pg, s3, prefect
    finally:
        for server in (prefect, s3, pg):
            server.stop()


@pytest.fixture(scope="session")
def srv():
    """The tests/support/servers.py module (servers and the Prefect REST helper `api`)."""
    return servers()
