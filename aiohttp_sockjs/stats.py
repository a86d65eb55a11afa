"""Endpoint statistics: what :meth:`Endpoint.stats() <aiohttp_sockjs.Endpoint.stats>` returns.

The endpoint counts as it works, in plain integers on itself, where the
session actor or a transport already performs the action being counted;
:meth:`~aiohttp_sockjs.Endpoint.stats` copies those counters and counts the
sessions it holds. Nothing is computed per message beyond an addition, so
the counters are always on. :mod:`aiohttp_sockjs.metrics` exports the
snapshot to Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .machine import SessionState

__all__ = ["REFUSAL_REASONS", "EndpointStats"]

#: Why a request or session can be refused, as counted in
#: :attr:`EndpointStats.refused`:
#:
#: - ``too_many_sessions``: a new session would go over ``max_sessions`` (503,
#:   or close 1013 on a websocket or stream that filled up meanwhile);
#: - ``too_many_client_sessions``: a new session would go over
#:   ``max_sessions_per_client`` for its client (503, or close 1013 as above);
#: - ``shutting_down``: a new session while the endpoint shuts down;
#: - ``origin``: an ``Origin`` not in ``allowed_origins`` (403);
#: - ``request_size``: a body or websocket frame over ``max_request_size``
#:   (413, websocket close 1009);
#: - ``message_size``: a message over ``max_message_size`` (413, 1009);
#: - ``message_count``: more than ``max_messages_per_request`` messages in
#:   one body or frame (413, 1009);
#: - ``rate_limit``: a session closed for going over ``rate_limit`` (1008);
#: - ``client_rate_limit``: a session closed because its client went over
#:   ``client_rate_limit`` (1008);
#: - ``inbox_full``: an ``xhr_send``/``jsonp_send`` that found no room in the
#:   session's inbox within ``inbound_timeout`` (503).
REFUSAL_REASONS: Final = (
    "too_many_sessions",
    "too_many_client_sessions",
    "shutting_down",
    "origin",
    "request_size",
    "message_size",
    "message_count",
    "rate_limit",
    "client_rate_limit",
    "inbox_full",
)

#: The states a session the endpoint holds can be in.
HELD_STATES: Final = (SessionState.NEW, SessionState.OPEN, SessionState.CLOSING)


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """A snapshot of one endpoint's sessions, traffic and trouble.

    Counters (``opened``, ``closed``, ``messages_*``, ``chars_*``,
    ``queue_overflows``, ``refused``, ``heartbeats``, ``sweeps``) count from
    the endpoint's creation and only grow; ``sessions`` and
    ``last_sweep_seconds`` are the values at the time of the snapshot.

    Sizes are in characters, like ``max_message_size`` and the queue bounds:
    ``chars_in`` counts the text of the messages the application received,
    ``chars_out`` the messages sent as they are encoded into frames (JSON
    strings, which are ASCII on the SockJS transports, so there it is also
    their size in bytes, framing aside; the raw websocket's text as is).
    """

    #: The endpoint's prefix, e.g. ``"/chat"``.
    prefix: str
    #: Sessions the endpoint holds, by ``(transport, state)``: every served
    #: transport with each of ``NEW``, ``OPEN`` and ``CLOSING``, zeros included.
    #: A closing session is held until it expires (``disconnect_delay``).
    sessions: Mapping[tuple[str, SessionState], int]
    #: Sessions opened, by transport (every transport, zeros included).
    opened: Mapping[str, int]
    #: Sessions closed, by close code (e.g. 1002 when the client went away,
    #: 3000 when the handler returned, 1013 after a queue overflow).
    closed: Mapping[int, int]
    #: Messages the application received from clients.
    messages_in: int
    #: Messages handed to a connection for the client.
    messages_out: int
    #: Characters of :attr:`messages_in` (see the class docstring).
    chars_in: int
    #: Characters of :attr:`messages_out`, as encoded (see the class docstring).
    chars_out: int
    #: Sends past ``max_queue_size``: with ``queue_overflow="close"``, the
    #: sessions closed with 1013 for it; with ``"drop_oldest"``, the sends
    #: that made room by dropping older messages.
    queue_overflows: int
    #: Refusals by reason, every one of :data:`REFUSAL_REASONS` (zeros included).
    refused: Mapping[str, int]
    #: Heartbeat frames sent.
    heartbeats: int
    #: Sweeps done by the endpoint's manager.
    sweeps: int
    #: How long the last sweep took, in seconds (``None`` before the first).
    last_sweep_seconds: float | None

    @property
    def open_sessions(self) -> int:
        """How many sessions the endpoint holds (closing ones included)."""
        return sum(self.sessions.values())

    @property
    def sessions_by_transport(self) -> dict[str, int]:
        """Sessions held, by transport."""
        totals: dict[str, int] = {}
        for (transport, _), count in self.sessions.items():
            totals[transport] = totals.get(transport, 0) + count
        return totals

    @property
    def sessions_by_state(self) -> dict[SessionState, int]:
        """Sessions held, by state."""
        totals = dict.fromkeys(HELD_STATES, 0)
        for (_, state), count in self.sessions.items():
            totals[state] = totals.get(state, 0) + count
        return totals
