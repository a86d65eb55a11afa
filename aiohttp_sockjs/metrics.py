"""Prometheus metrics for an application's SockJS endpoints.

Needs ``prometheus-client``, which the ``prometheus`` extra brings.
One call serves ``/metrics`` from the application::

    from aiohttp_sockjs.metrics import setup_metrics

    setup_metrics(app)  # GET /metrics, from prometheus_client's default registry

An application that already serves metrics adds the SockJS ones to its
registry instead::

    from aiohttp_sockjs.metrics import register_collector

    register_collector(app)  # or register_collector(app, my_registry)

Nothing is counted per message by the library: a :class:`SockJSCollector`
reads :meth:`Endpoint.stats() <aiohttp_sockjs.Endpoint.stats>` of every
endpoint of the application when Prometheus scrapes. Every metric has an
``endpoint`` label, the endpoint's prefix (``/`` for the root); counters
unless marked, with more labels in brackets:

- ``sockjs_sessions`` (gauge; ``transport``, ``state``): sessions held now.
- ``sockjs_sessions_opened_total`` (``transport``): sessions opened.
- ``sockjs_sessions_closed_total`` (``code``): sessions closed, by close code.
- ``sockjs_messages_received_total``, ``sockjs_messages_sent_total``:
  messages from and to clients.
- ``sockjs_received_characters_total``, ``sockjs_sent_characters_total``:
  their characters (sent ones as encoded into frames).
- ``sockjs_queue_overflows_total``: sends past ``max_queue_size``.
- ``sockjs_refused_total`` (``reason``): refused requests and sessions.
- ``sockjs_heartbeats_sent_total``: heartbeat frames sent.
- ``sockjs_sweeps_total`` and ``sockjs_sweep_duration_seconds`` (gauge):
  the manager's sweeps, and how long the last one took.

``state`` is ``new``, ``open`` or ``closing``; ``reason`` one of
:data:`~aiohttp_sockjs.stats.REFUSAL_REASONS`. See
:class:`~aiohttp_sockjs.stats.EndpointStats` for what each figure counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from aiohttp import web

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.aiohttp import make_aiohttp_handler
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.metrics_core import Metric
except ImportError as exc:  # pragma: no cover - depends on the install
    from ._extras import missing

    raise missing("aiohttp_sockjs.metrics", "prometheus-client", "prometheus") from exc

from . import ENDPOINTS
from .stats import EndpointStats

__all__ = ["SockJSCollector", "register_collector", "setup_metrics"]


class SockJSCollector:
    """A Prometheus collector of the SockJS endpoints of ``app``.

    It reads ``app``'s endpoints when collected, so endpoints set up after
    it are included. Register it with a ``prometheus_client`` registry
    (:func:`register_collector` does).
    """

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        """The metrics of every endpoint, read now (called by the registry)."""
        endpoints = list(self._app.get(ENDPOINTS, {}).values())
        snapshots = [endpoint.stats() for endpoint in endpoints]
        yield from _session_metrics(snapshots)
        yield from _traffic_metrics(snapshots)
        yield _counter_by(
            snapshots,
            "sockjs_refused",
            "Requests or sessions refused, by reason.",
            "reason",
            lambda stats: stats.refused,
        )
        yield from _timer_metrics(snapshots)


def _label(stats: EndpointStats) -> str:
    """The ``endpoint`` label: the prefix, ``/`` for the root."""
    return stats.prefix or "/"


def _counter(
    snapshots: Sequence[EndpointStats],
    name: str,
    documentation: str,
    value: Callable[[EndpointStats], int],
) -> CounterMetricFamily:
    """A counter with one sample per endpoint."""
    family = CounterMetricFamily(name, documentation, labels=["endpoint"])
    for stats in snapshots:
        family.add_metric([_label(stats)], value(stats))
    return family


def _counter_by(
    snapshots: Sequence[EndpointStats],
    name: str,
    documentation: str,
    label: str,
    counts: Callable[[EndpointStats], Mapping[Any, int]],
) -> CounterMetricFamily:
    """A counter with one sample per endpoint and key of its ``counts``."""
    family = CounterMetricFamily(name, documentation, labels=["endpoint", label])
    for stats in snapshots:
        for key, count in counts(stats).items():
            family.add_metric([_label(stats), str(key)], count)
    return family


def _session_metrics(snapshots: Sequence[EndpointStats]) -> list[Metric]:
    """Sessions held now, sessions opened and sessions closed."""
    held = GaugeMetricFamily(
        "sockjs_sessions",
        "SockJS sessions the endpoint holds (closing ones until they expire).",
        labels=["endpoint", "transport", "state"],
    )
    for stats in snapshots:
        for (transport, state), count in stats.sessions.items():
            held.add_metric([_label(stats), transport, state.value], count)
    return [
        held,
        _counter_by(
            snapshots,
            "sockjs_sessions_opened",
            "SockJS sessions opened.",
            "transport",
            lambda stats: stats.opened,
        ),
        _counter_by(
            snapshots,
            "sockjs_sessions_closed",
            "SockJS sessions closed, by close code.",
            "code",
            lambda stats: stats.closed,
        ),
    ]


def _traffic_metrics(snapshots: Sequence[EndpointStats]) -> list[Metric]:
    """Messages and their characters, from and to clients; sends past the queue's bound."""
    return [
        _counter(
            snapshots,
            "sockjs_messages_received",
            "Messages the application received.",
            lambda stats: stats.messages_in,
        ),
        _counter(
            snapshots,
            "sockjs_messages_sent",
            "Messages handed to a connection for the client.",
            lambda stats: stats.messages_out,
        ),
        _counter(
            snapshots,
            "sockjs_received_characters",
            "Characters of the messages the application received.",
            lambda stats: stats.chars_in,
        ),
        _counter(
            snapshots,
            "sockjs_sent_characters",
            "Characters of the messages sent, as encoded into frames.",
            lambda stats: stats.chars_out,
        ),
        _counter(
            snapshots,
            "sockjs_queue_overflows",
            "Sends past max_queue_size.",
            lambda stats: stats.queue_overflows,
        ),
    ]


def _timer_metrics(snapshots: Sequence[EndpointStats]) -> list[Metric]:
    """What the endpoint's timers did: heartbeats sent, and the manager's sweeps."""
    sweep_seconds = GaugeMetricFamily(
        "sockjs_sweep_duration_seconds", "How long the last sweep took.", labels=["endpoint"]
    )
    for stats in snapshots:
        if stats.last_sweep_seconds is not None:
            sweep_seconds.add_metric([_label(stats)], stats.last_sweep_seconds)
    return [
        _counter(
            snapshots,
            "sockjs_heartbeats_sent",
            "Heartbeat frames sent.",
            lambda stats: stats.heartbeats,
        ),
        _counter(
            snapshots, "sockjs_sweeps", "Sweeps of the session manager.", lambda stats: stats.sweeps
        ),
        sweep_seconds,
    ]


def register_collector(
    app: web.Application, registry: CollectorRegistry = REGISTRY
) -> SockJSCollector:
    """Add the SockJS metrics of ``app`` to ``registry`` (the default one unless given).

    For an application that already serves a registry's metrics. Returns
    the collector; ``registry.unregister(collector)`` removes it. A registry
    takes one application's SockJS metrics: give each application its own.
    """
    collector = SockJSCollector(app)
    registry.register(collector)
    return collector


def setup_metrics(
    app: web.Application, path: str = "/metrics", *, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """Serve Prometheus metrics at ``GET path``, the SockJS ones included.

    ``registry`` is ``prometheus_client``'s default one unless given (so the
    process's own metrics, and any the application defines there, are
    served too). The SockJS collector joins it while the application runs
    and leaves it at cleanup. Returns the registry.
    """
    target = REGISTRY if registry is None else registry

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        collector = register_collector(app, target)
        try:
            yield
        finally:
            target.unregister(collector)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(path, make_aiohttp_handler(target))
    return target
