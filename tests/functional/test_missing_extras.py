"""Without an optional dependency, the error names the extra that brings it.

Each case runs a fresh interpreter in which the dependency is hidden: a
module of its name earlier on the path fails to import, as if it were not
installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiohttp_sockjs import _extras

ROOT = Path(__file__).resolve().parents[2]


def run_without(tmp_path: Path, hidden: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / f"{hidden}.py").write_text(
        f"raise ModuleNotFoundError({hidden!r}, name={hidden!r})\n"
    )
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_names_extra(output: str, extra: str, requirement_start: str) -> None:
    [requirement] = _extras.requirements(extra)
    assert requirement.startswith(requirement_start)
    assert f"'{extra}' extra: pip install '{requirement}', or pip install '" in output
    assert f"[{extra}]'" in output


@pytest.mark.parametrize(
    ("module", "hidden", "extra", "requirement"),
    [
        ("aiohttp_sockjs.broker", "redis", "redis", "redis[hiredis]"),
        ("aiohttp_sockjs.metrics", "prometheus_client", "prometheus", "prometheus-client"),
    ],
)
def test_import_error_names_the_extra(
    tmp_path: Path, module: str, hidden: str, extra: str, requirement: str
) -> None:
    result = run_without(tmp_path, hidden, "-c", f"import {module}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ImportError: {module} needs "), result.stderr
    assert_names_extra(last, extra, requirement)


@pytest.mark.parametrize(
    ("demo", "hidden", "extra", "requirement"),
    [
        ("demo.cluster", "redis", "redis", "redis[hiredis]"),
        ("demo.cluster", "prometheus_client", "prometheus", "prometheus-client"),
        ("demo.chat", "prometheus_client", "prometheus", "prometheus-client"),
    ],
)
def test_demo_exits_with_the_hint(
    tmp_path: Path, demo: str, hidden: str, extra: str, requirement: str
) -> None:
    """The demo says what to install in one line, without a traceback, and starts nothing."""
    result = run_without(tmp_path, hidden, "-m", demo, "--port", "1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"python -m {demo}: aiohttp_sockjs.")
    assert_names_extra(line, extra, requirement)


def test_hint_without_requirements() -> None:
    """An extra the metadata does not list (or no metadata at all) still gets the path form."""
    assert _extras.requirements("no-such-extra") == []
    assert _extras.hint("no-such-extra") == (
        "install aiohttp-sockjs's 'no-such-extra' extra: "
        "pip install '<path to aiohttp-sockjs or its wheel>[no-such-extra]'"
    )
