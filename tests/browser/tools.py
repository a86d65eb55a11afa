"""What the browser tests need from the machine, checked in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CLIENT = ROOT / "node_modules" / "sockjs-client" / "dist" / "sockjs.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_tools() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(
            f"{CHROMIUM} not found: install Debian's Chromium "
            "(sudo apt-get install -y chromium); never `playwright install`"
        )
    if not CLIENT.exists():
        missing.append(f"{CLIENT} not found: run `npm ci` in {ROOT}")
    else:
        installed = json.loads((CLIENT.parents[1] / "package.json").read_text())["version"]
        if not installed.startswith("1.6."):
            missing.append(f"sockjs-client {installed} installed, 1.6.x pinned: run `npm ci`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the `playwright` Python package is missing: pip install -e '.[test]'")
    if missing:
        pytest.fail("browser tests cannot run:\n  " + "\n  ".join(missing), pytrace=False)
