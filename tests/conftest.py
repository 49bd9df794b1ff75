"""Shared test options. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import servers

# Keep Prefect and HF fully offline and quiet in every test process.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    """`slow` (real weights, downloads) runs only with --run-slow; `gpu` only where CUDA is available."""
    skip_slow = pytest.mark.skip(reason="slow (real weights): pass --run-slow")
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not _cuda():
            item.add_marker(pytest.mark.skip(reason="gpu: no CUDA device here"))


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_videos_dir():
    """../shared/data/videos beside the checkout; tests using it skip when it is absent."""
    path = os.path.abspath(os.path.join(SHARED_DATA, "videos"))
    if not os.path.isdir(path):
        pytest.skip("../shared/data/videos is not present")
    return path


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback (tests/support/servers.py), with the S3 client environment (endpoint,
    dummy credentials) set for the session; the bucket `pixelrefer-test` exists."""
    server = servers.MotoServer()
    mp = pytest.MonkeyPatch()
    try:
        server.start()
        for name, value in server.env.items():
            mp.setenv(name, value)
        server.create_bucket("pixelrefer-test")
        yield server
    finally:
        mp.undo()
        server.stop()
