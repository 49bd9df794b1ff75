"""Every command on a store on object storage (moto's S3 server on loopback, reached through s3fs) with its
catalog elsewhere: run, status, query, search, export, report, describe, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def s3_run(s3_server, archive, tmp_path_factory):
    """One tiny run of part of the archive into s3://pixelrefer-test/cli-store, catalog in a local SQLite."""
    home = tmp_path_factory.mktemp("s3-cli")
    env = {**os.environ, "XDG_CACHE_HOME": str(home / "cache"),
           "PIXELREFER_CATALOG_URL": f"sqlite:///{home / 'catalog.sqlite'}"}
    env.pop("PIXELREFER_CACHE_DIR", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flows", *args], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=600)

    store = "s3://pixelrefer-test/cli-store"
    res = cli("run", os.path.join(archive, "a"), "--store", store, "--profile", "tiny", "--sample-fps", "6",
              "--frames-per-object", "2", "--max-new-tokens", "4")
    assert res.returncode == 0, res.stdout + res.stderr
    return cli, store, home


def test_a_run_on_s3_is_queried_searched_exported_and_reported(s3_run):
    cli, store, home = s3_run
    res = cli("status", "--store", store)
    assert res.returncode == 0 and "describe  done" in res.stdout, res.stdout + res.stderr
    res = cli("query", "--store", store, "--format", "json",
              "SELECT count(*) AS n, count(caption) AS described FROM object_captions")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["n"] > 0 and row["described"] == row["n"]
    res = cli("search", "--store", store, "a moving object", "--format", "json", "--limit", "3")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout)
    assert 0 < len(hits) <= 3 and all(h["video_id"] and h["thumbnail_frame"] is not None for h in hits)
    res = cli("export", "--store", store, "--format", "csv", "--out", str(home / "csv"))
    assert res.returncode == 0 and os.listdir(home / "csv"), res.stderr
    res = cli("report", "--store", store, "--out", str(home / "report"))
    assert res.returncode == 0 and (home / "report" / "index.html").is_file(), res.stderr
    res = cli("describe", "--store", store, "--profile", "tiny", "--frames-per-object", "2", "--max-new-tokens", "4")
    assert res.returncode == 0 and "every unit already done" in res.stdout + res.stderr, res.stdout + res.stderr


def test_a_store_url_without_a_catalog_url_says_what_to_give(s3_run):
    _, store, _ = s3_run
    env = {k: v for k, v in os.environ.items() if k != "PIXELREFER_CATALOG_URL"}
    res = subprocess.run([sys.executable, "-m", "flows", "status", "--store", store], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "--catalog-url" in res.stderr and "Traceback" not in res.stderr
