"""The cross-process benchmark runs in smoke mode, so it cannot rot.

It starts its own redis-server and two server processes; nothing here
looks at speed: benchmarks never assert on it.
"""

from __future__ import annotations

import json
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


def test_scale_benchmark_smoke(tmp_path: Path) -> None:
    """Both modes of benchmarks.scale, tiny: one process (ours, the baseline,
    the transport mix), and two processes sharing a Redis."""
    for mode, args in (
        ("single", ["--sizes", "30"]),
        ("machine", ["--sessions", "40", "--servers", "2"]),
    ):
        raw = tmp_path / f"{mode}.json"
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", mode, *args, "--idle", "0.3",
             "--rounds", "1", "--settle", "0.1", "--json", str(raw)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        assert "| RSS/session KB |" in out.stdout
        rows = json.loads(raw.read_text())
        assert len(rows) == (3 if mode == "single" else 1)
        for row in rows:
            # Every session got the broadcast; ours closed every one with 1001.
            assert row["bcast_all_reached"], row
            assert row["closed"] == row["sessions"], row
            if row["server"] != "baseline":
                assert row["got_1001"] == row["sessions"], row


def test_redis_rates_benchmark_smoke() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.redis_rates", "--requests", "500"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("\n| XREAD") == 2 and out.stdout.count("\n| XADD") == 2, out.stdout
