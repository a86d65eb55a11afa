"""The package's layers: no private reach across modules, one known import cycle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_reads_anothers_private_names() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "private_reach.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cross-module private names: 0" in out, out
    # session -> endpoint, for the public type of Session.endpoint (docs/architecture.md).
    assert "import cycles: 1\n  endpoint -> session -> endpoint" in out, out
