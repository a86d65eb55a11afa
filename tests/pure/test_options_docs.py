"""The options are defined once, in Options; everything else that lists them agrees.

``EndpointOptions`` (for type checkers), the option list of ``setup()``'s
docstring, the reference page of the docs and any option table in the README
or the docs must name the same options with the same defaults as the fields
of :class:`aiohttp_sockjs.Options`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

import aiohttp_sockjs
from aiohttp_sockjs.options import EndpointOptions, Options, option_docs

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import sockjs_options  # noqa: E402  (docs/_ext, the Sphinx extension)

OPTIONS = [f for f in fields(Options) if f.init]
NAMES = [f.name for f in OPTIONS]
UNITS = {"", "seconds", "bytes", "characters", "messages", "sessions", "rooms", "URL"}


def test_endpoint_options_match_the_fields() -> None:
    assert list(EndpointOptions.__annotations__) == NAMES
    for f in OPTIONS:
        typed = EndpointOptions.__annotations__[f.name]
        assert getattr(typed, "__forward_arg__", typed) == f.type, f.name


def test_every_option_is_documented() -> None:
    for f in OPTIONS:
        assert f.default is not MISSING, f.name
        assert f.metadata["doc"].strip() and f.metadata["client"].strip(), f.name
        assert f.metadata["unit"] in UNITS, f.name
    assert [o.name for o in option_docs()] == NAMES
    assert [o.default for o in option_docs()] == [repr(f.default) for f in OPTIONS]


def test_setup_docstring_lists_every_option_in_order() -> None:
    doc = aiohttp_sockjs.setup.__doc__ or ""
    listed = re.findall(r"^- ``(\w+)``\s+\(``(.*?)``", doc, re.M)
    assert listed == [(o.name, o.default) for o in option_docs()]


def test_docs_reference_is_generated_from_the_fields() -> None:
    page = (ROOT / "docs" / "reference" / "options.rst").read_text()
    assert ".. sockjs-options::" in page
    text = sockjs_options.render()
    for option in option_docs():
        assert f".. py:attribute:: {option.name}" in text
        assert f":value: {option.default}" in text


def _tables() -> list[tuple[str, str, str]]:
    """Rows of option tables in README and docs: (file, option, default cell)."""
    rows = []
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted((ROOT / "docs").rglob("*.rst"))
    for path in files:
        text = path.read_text()
        for name, default in re.findall(r"^\| `(\w+)` \| ([^|]*) \|", text, re.M):
            if name in NAMES:
                rows.append((str(path.relative_to(ROOT)), name, default.strip()))
    return rows


@pytest.mark.parametrize(("where", "name", "default"), _tables())
def test_option_tables_agree(where: str, name: str, default: str) -> None:
    """A table row gives the option's default as Python writes it, and maybe in words."""
    [option] = [o for o in option_docs() if o.name == name]
    expected = f"`{option.default}`"
    if option.default_words:
        expected += f" ({option.default_words})"
    assert default == expected, where


def test_readme_has_an_option_table() -> None:
    assert any(where == "README.md" for where, _, _ in _tables())
