"""The cross-process benchmark runs in smoke mode, so it cannot rot.

It starts its own redis-server and two server processes; nothing here
looks at speed: benchmarks never assert on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_benchmark_smoke(tmp_path: Path) -> None:
    raw = tmp_path / "runs.json"
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.cluster", "--scale", "smoke", "--reps", "1",
         "--json", str(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "deliveries per server CPU-second" in out.stdout
    assert "other process: p50 / p99" in out.stdout
    assert "never arrived" not in out.stdout, out.stdout
    assert raw.exists()
