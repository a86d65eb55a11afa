"""Sphinx configuration: the API reference, built from the package's docstrings."""

from aiohttp_sockjs import __version__

project = "aiohttp-sockjs"
copyright = "the aiohttp-sockjs authors"
release = version = __version__

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"description": "The SockJS server for aiohttp"}
