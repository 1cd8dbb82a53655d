"""The benchmark harness runs end to end with tiny numbers (speed is measured in bench/, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_bench_runs_every_scenario_against_both_targets_and_writes_its_figures(tmp_path):
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--scale", "smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    for mode in ("direct", "relay"):
        fixed, top = results["fixed"][mode], results["max"][mode]
        assert fixed["streams_failed"] == 0, fixed["failures"]
        assert top["streams_failed"] == 0, top["failures"]
        assert fixed["tokens_per_s"] > 0
        assert fixed["latency_ms"]["count"] > 0
        assert top["tokens_per_s"] > 0
        for phase in ("streaming", "silent"):
            assert results["cancel"][mode][phase]["aborted"] == results["scale_figures"]["cancel_streams"]
    assert results["fixed"]["relay"]["cpu_us_per_token"] > 0
    memory = results["memory"]["relay"]["open"][0]
    assert memory["streaming"] == memory["streams"]
    assert "targets" in results["derived"]
    assert "| figure | direct | relay |" in done.stdout
