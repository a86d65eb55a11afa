"""Runnable examples: the chat demo and the conformance server."""
