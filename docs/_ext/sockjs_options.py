"""Sphinx extension: ``.. sockjs-options::`` writes the options reference.

Everything comes from the fields of :class:`aiohttp_sockjs.Options` (their
defaults and the documentation in their metadata), so an option added or a
default changed there shows here with no other edit.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from aiohttp_sockjs.options import option_docs


def render() -> str:
    """The reference as reStructuredText: a summary table, then one entry per option."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 40 15",
        "",
        "   * - option",
        "     - default",
        "     - unit",
    ]
    for option in option_docs():
        default = f"``{option.default}``"
        if option.default_words:
            default += f" ({option.default_words})"
        lines += [
            f"   * - :attr:`{option.name}`",
            f"     - {default}",
            f"     - {option.unit or ''}",
        ]
    lines.append("")
    for option in option_docs():
        lines += [
            f".. py:attribute:: {option.name}",
            f"   :type: {option.type}",
            f"   :value: {option.default}",
            "",
            f"   {option.doc}",
            "",
        ]
        if option.unit:
            words = f" ({option.default_words})" if option.default_words else ""
            lines += [f"   *Unit:* {option.unit}; *default:* ``{option.default}``{words}.", ""]
        lines += [f"   *What the client sees:* {option.client}.", ""]
    return "\n".join(lines)


class OptionsDirective(SphinxDirective):
    """``.. sockjs-options::``: the options, generated; put it inside ``Options``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """Parse the generated reference in place."""
        container = nodes.container()
        self.state.nested_parse(
            StringList(render().splitlines(), source="aiohttp_sockjs/options.py"),
            self.content_offset,
            container,
        )
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("sockjs-options", OptionsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
