"""Sphinx configuration: the manual, with the API reference built from the docstrings."""

import sys
from pathlib import Path

from aiohttp_sockjs import __version__

# docs/_ext: the extension that writes the options reference from Options.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "aiohttp-sockjs"
copyright = "the aiohttp-sockjs authors"
release = version = __version__

extensions = ["sphinx.ext.autodoc", "sockjs_options"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "The SockJS server for aiohttp"}
