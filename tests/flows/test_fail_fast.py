"""Runs that cannot work stop before any work with exit 2 and one line; a run with nothing to do starts no
Prefect and no model; Ctrl-C and kill -9 leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from storage import Store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--profile", "tiny", "--segmenter", "motion", "--sample-fps", "6", "--frames-per-object", "2",
        "--max-new-tokens", "4", "--batch-size", "4"]


def _env(**changes):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("PREFECT_API_URL", None)
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def _cli(args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=REPO, env=env or _env(), capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    from pixelrefer_core.model.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(str(tmp_path_factory.mktemp("ckpt") / "tiny"))


def _units_written(store) -> int:
    return sum(len(fs) for d, _, fs in os.walk(store) if "video_id=" in d)


@pytest.mark.parametrize(
    "extra, says",
    [
        (["--device", "cuda"], "no usable CUDA device"),
        (["--model", "nobody/no-such-pixelrefer"], "hub download failed"),
        (["--segmenter", "sam2", "--sam2", "facebook/sam2.1-hiera-tiny", "--model", "TINY"], "could not download"),
        (["--model", "NOT_JSON"], "cannot read the checkpoint config"),
    ],
    ids=["cuda-missing", "hub-model-unreachable", "sam2-checkpoint-unreachable", "model-config-unreadable"],
)
def test_a_run_that_cannot_work_stops_before_any_work(archive, tmp_path, prefect_server, tiny_checkpoint, extra,
                                                      says):
    store = tmp_path / "store"
    not_json = tmp_path / "not-json-model"
    not_json.mkdir()
    (not_json / "config.json").write_text("{not json")
    paths = {"TINY": tiny_checkpoint, "NOT_JSON": str(not_json)}
    args = ["run", archive, "--store", str(store), *TINY, *[paths.get(a, a) for a in extra]]
    if "--model" in extra:  # a real model reference instead of the tiny profile
        args.remove("--profile"), args.remove("tiny")
    out = _cli(args, _env(PREFECT_API_URL=prefect_server))
    assert out.returncode == 2, out.stdout + out.stderr
    (line,) = out.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("pixelrefer run:") and says in line
    assert _units_written(store) == 0


def test_a_model_that_cannot_load_stops_the_run_and_leaves_its_units_retryable(archive, tmp_path, prefect_server,
                                                                               tiny_checkpoint):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_checkpoint, broken)  # a readable config and tokenizer, weights cut short
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    store = tmp_path / "store"
    out = _cli(["run", archive, "--store", str(store), "--model", str(broken), "--segmenter", "motion",
                "--sample-fps", "6"], _env(PREFECT_API_URL=prefect_server))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the run stopped" in out.stderr and "Traceback" not in out.stderr
    catalog = Store.open(str(store), create=False).catalog
    describe = catalog.units(stage="describe")
    assert describe and all(u.state != "done" and (u.state != "failed" or u.retryable) for u in describe)
    assert {u.state for u in catalog.units(stage="track")} == {"done"}  # the work that could be done was kept


def test_a_rerun_with_nothing_to_do_starts_neither_prefect_nor_a_model(clean_run, archive, tmp_path):
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(clean_run[0], copy)
    code = (
        "import sys; from flows.cli import main; rc = main(sys.argv[1:]); "
        "heavy = sorted(m for m in ('prefect', 'torch', 'transformers', 'sam2') if m in sys.modules); "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code, "run", archive, "--store", str(copy), *TINY], cwd=REPO,
                         env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "nothing to do" in out.stdout and "HEAVY []" in out.stdout
    assert "2 skipped (already done)" in out.stdout and "1 failed" in out.stdout
    runs = Store.open(str(copy), create=False).catalog.runs()
    assert runs[0].status == "ok" and runs[0].summary["videos_skipped"] == 2  # the no-op run is recorded


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_run_leaves_no_prefect_server_behind(archive, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "flows", "run", archive, "--store", str(tmp_path / "s"), *TINY],
                            cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    server = None
    while server is None and time.monotonic() < deadline and proc.poll() is None:
        for child in _children(proc.pid):
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                if b"uvicorn" in fh.read():
                    server = child
        time.sleep(0.05)
    assert server is not None, "the run never started its temporary Prefect server"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server), "the temporary Prefect server outlived the killed run"


def test_ctrl_c_stops_a_run_with_exit_130_and_one_line(tmp_path, prefect_server):
    from flows.demo_archive import ArchiveScene, make_archive
    from pixelrefer_core.synthetic import SyntheticObject

    # long enough (every frame tracked: tens of seconds) that the interrupt arrives while work goes on
    scene = ArchiveScene("long.mp4", (SyntheticObject("red", "rect", 20, start=(10, 40), velocity=(0.5, 0.0)),),
                         num_frames=1500, fps=30.0, width=160, height=120, seed=5)
    archive = tmp_path / "archive"
    make_archive(str(archive), (scene,), corrupt=False)
    proc = subprocess.Popen([sys.executable, "-m", "flows", "run", str(archive), "--store", str(tmp_path / "s"),
                             "--profile", "tiny", "--segmenter", "motion", "--sample-fps", "30"], cwd=REPO,
                            env=_env(PREFECT_API_URL=prefect_server), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ingest" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
