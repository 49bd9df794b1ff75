"""The `pixelrefer` command line: refusing unusable runs up front, serve without a server, and two
concurrent runs on one store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from storage import Store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_ARGS = ["--profile", "tiny", "--segmenter", "motion", "--sample-fps", "6", "--frames-per-object", "2",
             "--max-new-tokens", "4", "--batch-size", "4"]


def _cli(args, env_changes=None, timeout=300):
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.update(env_changes or {})
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_run_refuses_invalid_prompt_file_and_missing_model_before_any_work(archive, tmp_path):
    from flows.cli import main

    store = tmp_path / "store"
    bad = tmp_path / "p.yaml"
    bad.write_text("- id: a\n  task: poem\n  text: x\n")
    assert main(["run", archive, "--store", str(store), "--profile", "tiny", "--prompts", str(bad)]) == 2
    assert main(["run", archive, "--store", str(store), "--model", str(tmp_path / "no-such-model")]) == 2
    assert main(["run", str(tmp_path / "no-archive"), "--store", str(store), "--profile", "tiny"]) == 2
    assert main(["run", archive, "--store", str(store)]) == 2  # neither --model nor --profile tiny
    assert not (store / "objects").exists()


def test_run_refuses_unusable_store(archive, tmp_path, capsys):
    from flows.cli import main

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    assert main(["run", archive, "--store", str(not_a_dir), "--profile", "tiny"]) == 2
    assert "pixelrefer run:" in capsys.readouterr().err


def test_describe_needs_an_existing_store(tmp_path, capsys):
    from flows.cli import main

    missing = tmp_path / "never-made"
    assert main(["describe", "--store", str(missing), "--profile", "tiny"]) == 2
    assert "no store at" in capsys.readouterr().err and not missing.exists()


@pytest.mark.parametrize("api_url, says", [(None, "PREFECT_API_URL is not set"),
                                           ("http://127.0.0.1:9/api", "not reachable")])
def test_serve_without_a_server_says_how_to_start_one(archive, tmp_path, api_url, says):
    env = {"PREFECT_API_URL": api_url} if api_url else {}
    out = _cli(["serve", archive, "--store", str(tmp_path / "s"), "--profile", "tiny", "--cron", "0 2 * * *"], env)
    assert out.returncode == 1
    assert says in out.stderr and "start one with: prefect server start" in out.stderr


def test_two_concurrent_runs_share_one_store_without_duplicate_units(
    prefect_server, archive, clean_run, tmp_path, snapshot
):
    """Two `python -m flows run` processes on one store: every unit done once, same tables as one run."""
    store = str(tmp_path / "store")
    env = dict(os.environ, PREFECT_API_URL=prefect_server)
    cmd = [sys.executable, "-m", "flows", "run", archive, "--store", store, *TINY_ARGS]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
        assert "run " in out and "videos:" in out
    catalog = Store.open(store, create=False).catalog
    units = catalog.units()
    assert {u.state for u in units if u.stage != "ingest"} == {"done"}
    assert all(u.attempts == 1 for u in units), [(u.stage, u.unit_key, u.attempts) for u in units]
    assert snapshot(store) == clean_run[2]


@pytest.mark.parametrize("entrypoint", ["flows/archive.py:process_archive", "flows/describe.py:describe_objects"])
def test_deployment_entrypoints_accept_settings_parameters_as_json(entrypoint, tmp_path):
    """What a served/deployed run does: load the flow from its entrypoint, validate JSON parameters."""
    import json

    from prefect.flows import load_flow_from_entrypoint

    from flows.settings import RunSettings

    params = RunSettings(store=str(tmp_path), archive=str(tmp_path), profile="tiny").as_params()
    assert "worker_id" not in params
    flow = load_flow_from_entrypoint(os.path.join(REPO, entrypoint))
    settings = flow.validate_parameters({"settings": json.loads(json.dumps(params))})["settings"]
    assert isinstance(settings, RunSettings) and settings.store == str(tmp_path) and settings.worker_id
