"""The storage commands of the CLI on a hand-made store: query (limits, time limit, Ctrl-C, bad SQL), verify,
release."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from flows.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLOW = "SELECT sum(hash(i)) FROM range(100000000000) AS t(i)"


def test_query_limits_the_table_format_and_says_so(populated, capsys):
    root = populated.root
    assert main(["query", "--store", root, "--limit", "2", "SELECT * FROM range(5) t(i)"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2:4] == ["0", "1"] and "first 2 rows shown; the result has more" in out[-1]
    assert main(["query", "--store", root, "SELECT * FROM range(2000) t(i)"]) == 0  # default: 1000
    assert "first 1000 rows shown" in capsys.readouterr().out
    assert main(["query", "--store", root, "--format", "csv", "SELECT * FROM range(3000) t(i)"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3001  # csv: every row
    assert main(["query", "--store", root, "--format", "json", "--limit", "2", "SELECT * FROM range(5) t(i)"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [{"i": 0}, {"i": 1}] and "cut at 2 rows" in captured.err
    assert main(["query", "--store", root, "--format", "json", "SELECT 1 AS a WHERE false"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["query", "--store", root, "--max-memory", "123MB", "--format", "csv",
                 "SELECT current_setting('memory_limit') AS m"]) == 0
    assert capsys.readouterr().out.splitlines()[1].replace(" ", "") in ("117.3MiB", "123.0MB", "123MB")


def test_query_time_limit_and_errors_exit_codes(populated, capsys):
    root = populated.root
    started = time.monotonic()
    assert main(["query", "--store", root, "--timeout", "0.5", "--threads", "1", SLOW]) == 124
    err = capsys.readouterr().err
    assert "time limit of 0.5 s" in err and "Traceback" not in err and time.monotonic() - started < 15
    assert main(["query", "--store", root, "SELECT * FROM read_text('/etc/passwd')"]) == 2
    err = capsys.readouterr().err
    assert "disabled by configuration" in err and "root:" not in err and "Traceback" not in err
    assert main(["query", "--store", root, "SET threads = 1"]) == 3


def _wait_until_it_opens_the_store(proc: subprocess.Popen, root: str, timeout: float = 120.0) -> None:
    """Block until the child holds a file of the store open: its query is then under way, however slow the
    machine was to start Python (a fixed sleep raced a loaded machine: SIGINT landed during imports)."""
    real_root = os.path.realpath(root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
            targets = [os.readlink(f"/proc/{proc.pid}/fd/{fd}") for fd in fds]
        except FileNotFoundError:  # an fd closed between listing and reading it
            targets = []
        if any(t.startswith(real_root + os.sep) for t in targets):
            time.sleep(0.5)  # from opening the views to running the statement
            return
        time.sleep(0.05)
    raise AssertionError(f"the query never opened a file of {root}")


def test_ctrl_c_stops_a_query_at_once_with_one_line(populated):
    proc = subprocess.Popen([sys.executable, "-m", "flows", "query", "--store", populated.root, "--threads", "1",
                             SLOW], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_until_it_opens_the_store(proc, populated.root)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - sent < 10
    assert err.strip() == "pixelrefer query: interrupted" and out == ""


@pytest.fixture
def recorded(populated, fx):
    for table, stage in (("videos", "ingest"), ("objects", "track"), ("descriptions", "describe")):
        for vid, key in populated.list_units(table):
            populated.catalog.mark_done(stage, vid, key)
    return populated


def test_verify_reports_then_repairs(recorded, fx, capsys):
    root = recorded.root
    assert main(["verify", "--store", root]) == 0
    assert "no problems found" in capsys.readouterr().out
    os.remove(recorded.unit_path("object_frames", fx.VIDEO_B, fx.NEW_TRACK))
    assert main(["verify", "--store", root]) == 1
    out = capsys.readouterr().out
    assert "missing" in out and "object_frames" in out and "--repair" in out
    assert main(["verify", "--store", root, "--repair"]) == 0
    assert "all repaired" in capsys.readouterr().out
    assert recorded.catalog.unit_state("track", fx.VIDEO_B, fx.NEW_TRACK) == "pending"
    assert main(["verify", "--store", root + "-nope"]) == 2


def test_release_lists_and_frees_claims(store, capsys):
    c = store.catalog
    c.claim_unit("track", "v1", "k", "host:1:a")
    c.claim_unit("track", "v2", "k", "host:2:b")
    assert main(["release", "--store", store.root]) == 0
    out = capsys.readouterr().out
    assert "2 claim(s) held" in out and "track:v1:k  by host:1:a" in out and "(live)" in out
    assert main(["release", "--store", store.root, "--unit", "track:v1:k"]) == 0
    assert "released 1 claim" in capsys.readouterr().out
    assert main(["release", "--store", store.root, "--stale"]) == 0  # b is live
    assert "released 0 claim" in capsys.readouterr().out
    assert main(["release", "--store", store.root, "--worker", "host:2:b"]) == 0
    assert c.held_claims() == [] and c.unit_state("track", "v2", "k") == "pending"
    assert main(["release", "--store", store.root, "--unit", "bad"]) == 2
    assert "STAGE:VIDEO_ID:KEY" in capsys.readouterr().err


def test_query_starts_without_heavy_imports(populated):
    code = ("import sys; from flows.cli import main; main(['query', '--store', sys.argv[1], 'SELECT 42']); "
            "print(sorted(m for m in ('sqlalchemy', 'pyarrow', 'fsspec', 'prefect', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, populated.root], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
