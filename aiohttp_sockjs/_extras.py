"""The optional parts' ImportError: it names the extra that brings what is missing.

The package is not on a public index, so ``pip install
'aiohttp-sockjs[redis]'`` would fail: the hint gives the extra's own
requirements (read from the installed package's metadata, so they match
``pyproject.toml``) and the form that adds the extra to an install from a
path or a wheel.
"""

from __future__ import annotations

import re
import shlex
from importlib import metadata
from typing import Final

_DISTRIBUTION: Final = "aiohttp-sockjs"
_EXTRA_MARKER: Final = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def requirements(extra: str) -> list[str]:
    """The requirements the ``extra`` of the installed package adds ([] if unknown)."""
    try:
        declared = metadata.requires(_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:  # run from a source tree, not installed
        return []
    found = []
    for line in declared:
        requirement, _, marker = line.partition(";")
        if extra in _EXTRA_MARKER.findall(marker):
            found.append(requirement.strip())
    return found


def hint(extra: str) -> str:
    """How to install ``extra``: the pip commands that work without a package index."""
    needs = requirements(extra)
    direct = f"pip install {' '.join(shlex.quote(r) for r in needs)}, or " if needs else ""
    return (
        f"install aiohttp-sockjs's {extra!r} extra: {direct}"
        f"pip install '<path to aiohttp-sockjs or its wheel>[{extra}]'"
    )


def missing(what: str, needs: str, extra: str) -> ImportError:
    """The ImportError for ``what``, which needs ``needs`` from ``extra``."""
    return ImportError(f"{what} needs {needs}, which is not installed; {hint(extra)}")
