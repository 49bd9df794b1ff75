"""benchmarks/gpu_check.py cannot rot silently: its describe section runs here at the dry-run sizes (the
same code the GPU check runs at Lite-2B/7B sizes), and its section runner keeps a failed section's error
and the other sections' results."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_describe_section_dry_run_measures_both_paths_and_they_agree(gpu_check, tmp_path):
    path = str(tmp_path / "describe.json")
    out = gpu_check.LiveResult(path)
    gpu_check.section_describe(gpu_check.DRY, "tiny", out)
    with open(path) as f:
        saved = json.load(f)
    assert saved.keys() == out.keys()  # saved as it went, last assignment included
    n = gpu_check.DRY.scenes * gpu_check.DRY.objects_per_frame
    assert out["fast_chosen"]["objects"] == n and out["fast_chosen"]["objects_per_s"] > 0
    assert out["fast_batch1"]["decode_slots"] == 1 and out["fast_batch1"]["objects"] == gpu_check.DRY.batch1_objects
    assert out["standard_batch8"]["path"] == "standard"
    # EOS suppressed: every answer decodes exactly the asked number of tokens
    for run in ("fast_chosen", "fast_batch1", "standard_batch8", "fast_timed"):
        assert out[run]["tokens_per_object"] == gpu_check.DRY.max_new_tokens
    # fp32 on CPU: the fast path gives today's tokens
    agree = out["agreement_fast_vs_standard"]
    assert agree["identical"] == agree["of"] == gpu_check.DRY.standard_objects
    assert out["vision_pass"]["sdpa_fused"]["rel_error"] < 1e-5
    assert out["vision_pass"]["tflop_per_pass"] > 0
    breakdown = out["breakdown_ms_per_object"]
    assert all(breakdown[k] > 0 for k in ("prepare", "encode", "region", "prefill", "decode"))
    assert out["profile_top_ops"] and out["fast_path_failures"] == {}


def test_a_failed_section_keeps_its_error_and_the_others_run(gpu_check, tmp_path):
    rc = gpu_check.main(["--dry-run", "--in-process", "--out", str(tmp_path), "--sections", "describe:nosuch,env"])
    assert rc == 1
    with open(tmp_path / "gpu_check_all_cpu_dry_run.json") as f:
        results = json.load(f)
    bad, env = results["sections"]["describe:nosuch"], results["sections"]["env"]
    assert bad["status"] == "error" and "nosuch" in bad["error"]
    assert env["status"] == "ok" and env["result"]["torch"] and results["dry_run"] is True


def test_section_limits_share_the_budget_and_pass_on_unused_time(gpu_check):
    sections = ["env", "describe:lite-2b", "describe:lite-7b", "sam2", "e2e"]
    shares = gpu_check.SECTION_SHARE_S
    scale = 540.0 / sum(shares[s] for s in sections)
    assert gpu_check._section_timeout("env", sections, 540.0, 540.0) == pytest.approx(scale * shares["env"])
    # the first four sections took no time: the last one gets everything left
    assert gpu_check._section_timeout("e2e", sections, 540.0, 540.0) == pytest.approx(540.0)
    # never more than what is left
    assert gpu_check._section_timeout("sam2", sections, 20.0, 540.0) == pytest.approx(20.0)


def test_a_section_process_is_stopped_at_its_limit_and_an_ok_one_reports_its_figures(gpu_check, tmp_path):
    with open(tmp_path / "log", "w") as log:
        stopped = gpu_check.run_in_subprocess(["--dry-run"], "env", 0.5, log)  # importing torch alone takes longer
        done = gpu_check.run_in_subprocess(["--dry-run"], "env", 120.0, log)
    assert stopped["status"] == "timeout" and "limit" in stopped["error"] and stopped["returncode"] is None
    assert done["status"] == "ok" and done["returncode"] == 0
    assert done["result"]["device"] == "cpu" and done["result"]["cuda_available"] is False
    assert "===== env" in (tmp_path / "log").read_text()
