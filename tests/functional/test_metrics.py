"""Endpoint stats and the Prometheus exporter, after known traffic over real sockets.

The endpoint runs on an injected clock, so heartbeats and expiry happen
only when a test moves it: every count is exact. ``/metrics`` is scraped
with a real HTTP request and parsed with prometheus_client's own parser.
"""

from __future__ import annotations

import io
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import aiohttp_sockjs
from aiohttp_sockjs import RateLimit, Session, SessionState, testing
from aiohttp_sockjs.client import SockJSClient, connect
from aiohttp_sockjs.metrics import register_collector, setup_metrics
from aiohttp_sockjs.stats import REFUSAL_REASONS
from tests.wire import ManualClock, Receiver, bounded, eventually, new_id, session_url

GOOD = "http://good.example"
#: Encoded, one of these takes 62 of the 100 characters of queue allowed.
FLOOD = "x" * 60

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def handler(session: Session) -> None:
    """Echo one message and return (close 3000); "stay" stays; "flood" overflows."""
    async for message in session:
        if message == "flood":
            for _ in range(3):
                session.send(FLOOD)
        elif message == "stay":
            session.send("staying")
        else:
            session.send(message)
            return


async def serve(
    aiohttp_client: Any,
    app: web.Application,
    clock: ManualClock,
    prefix: str = "/m",
    **options: Any,
) -> tuple[TestClient[Any, Any], aiohttp_sockjs.Endpoint]:
    endpoint = testing.setup(
        app,
        prefix,
        handler,
        clock=clock,
        sweep_interval=0.01,
        heartbeat_delay=10.0,
        disconnect_delay=30.0,
        **options,
    )
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client, endpoint


async def scrape(client: TestClient[Any, Any], path: str = "/metrics") -> Samples:
    async with client.get(path) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def of(
    samples: Samples, name: str, *labels: str, endpoint: str = "/m"
) -> dict[tuple[str, ...], float]:
    """The samples of ``name`` for ``endpoint``, keyed by the values of ``labels``."""
    found: dict[tuple[str, ...], float] = {}
    for (sample, pairs), value in samples.items():
        if sample == name and ("endpoint", endpoint) in pairs:
            values = dict(pairs)
            assert set(values) == {"endpoint", *labels}
            found[tuple(values[label] for label in labels)] = value
    return found


async def echo_once(url: str, transport: str) -> SockJSClient:
    """Open a session, echo "hello", and see the handler's close (3000)."""
    client = await connect(url, transports=transport, timeout=3)
    await client.send("hello")
    assert await bounded(client.receive()) == "hello"
    await bounded(client.wait_closed())
    assert client.close_code == 3000
    await client.close()
    return client


async def traffic(client: TestClient[Any, Any], clock: ManualClock) -> SockJSClient:
    """Known traffic on ``/m``; returns the websocket client left open."""
    url = str(client.make_url("/m"))
    # A session left open, then one heartbeat to it.
    stay = await connect(url, transports="websocket", timeout=3)
    await stay.send("stay")
    assert await bounded(stay.receive()) == "staying"
    clock.now = 15.0
    await eventually(lambda: stay.heartbeats == 1)
    # (The clock stays at 15 from here: nothing else expires or beats.)

    # Every transport: one session each that echoes "hello" and closes.
    for transport in sorted(aiohttp_sockjs.TRANSPORTS):
        await echo_once(url, transport)

    # A queue overflow: three sends of 62 characters against a 100 bound.
    flood = await connect(url, transports="xhr", timeout=3)
    await flood.send("flood")
    await bounded(flood.wait_closed())
    assert (flood.close_code, flood.close_reason) == (1013, "Send queue overflow")
    await flood.close()

    # A refused origin.
    sid = new_id()
    async with client.post(
        session_url("/m", sid, "xhr"), headers={"Origin": "http://evil.example"}
    ) as resp:
        assert resp.status == 403

    # A size cap, then the rate limit (3 messages, the clock never moving),
    # on the wire: one request with four messages.
    rx = Receiver(client, "/m", sid, "xhr")
    assert await rx.start() == "o"
    too_big = io.BytesIO(json.dumps(["y" * 300]).encode())
    async with client.post(session_url("/m", sid, "xhr_send"), data=too_big) as resp:
        assert resp.status == 413
    await rx.send("a", "b", "c", "d")
    assert await rx.frame() == 'c[1008,"Rate limit exceeded"]'

    return stay


OPTIONS: dict[str, Any] = {
    "allowed_origins": [GOOD],
    "allow_jsonp": True,
    "max_queue_size": 100,
    "max_message_size": 200,
    "rate_limit": RateLimit(messages_per_second=1, burst=3),
}

OPENED = {
    "websocket": 2,
    "raw_websocket": 1,
    "xhr_streaming": 1,
    "eventsource": 1,
    "xhr": 3,
    "htmlfile": 1,
    "jsonp": 1,
}
CLOSED = {1008: 1, 1013: 1, 3000: 7}
# Seven "hello", "flood", "stay"; the rate-limited four never arrive.
MESSAGES_IN = 9
CHARS_IN = 7 * 5 + 5 + 4
# Seven echoes ('"hello"', the raw websocket's bare hello) and '"staying"'.
MESSAGES_OUT = 8
CHARS_OUT = 6 * 7 + 5 + 9
REFUSED = {reason: 0 for reason in REFUSAL_REASONS} | {
    "origin": 1,
    "message_size": 1,
    "rate_limit": 1,
}
# The websocket sessions ended with their sockets; the others are closing
# until they expire.
HELD = {
    ("websocket", "open"): 1,
    ("xhr_streaming", "closing"): 1,
    ("eventsource", "closing"): 1,
    ("xhr", "closing"): 3,
    ("htmlfile", "closing"): 1,
    ("jsonp", "closing"): 1,
}


async def test_metrics_endpoint_counts_known_traffic(aiohttp_client: Any) -> None:
    app = web.Application()
    clock = ManualClock(0.0)
    setup_metrics(app)
    client, _ = await serve(aiohttp_client, app, clock, **OPTIONS)
    stay = await traffic(client, clock)
    try:
        samples = await scrape(client)
    finally:
        await stay.close()

    transports = sorted(aiohttp_sockjs.TRANSPORTS)
    held = {(t, s): 0.0 for t in transports for s in ("new", "open", "closing")}
    assert of(samples, "sockjs_sessions", "transport", "state") == held | HELD
    assert of(samples, "sockjs_sessions_opened_total", "transport") == {
        (t,): n for t, n in OPENED.items()
    }
    assert of(samples, "sockjs_sessions_closed_total", "code") == {
        (str(code),): n for code, n in CLOSED.items()
    }
    assert of(samples, "sockjs_messages_received_total") == {(): MESSAGES_IN}
    assert of(samples, "sockjs_received_characters_total") == {(): CHARS_IN}
    assert of(samples, "sockjs_messages_sent_total") == {(): MESSAGES_OUT}
    assert of(samples, "sockjs_sent_characters_total") == {(): CHARS_OUT}
    assert of(samples, "sockjs_queue_overflows_total") == {(): 1}
    assert of(samples, "sockjs_refused_total", "reason") == {(r,): n for r, n in REFUSED.items()}
    assert of(samples, "sockjs_heartbeats_sent_total") == {(): 1}
    [[sweeps]] = [list(of(samples, "sockjs_sweeps_total").values())]
    assert sweeps >= 1
    [[duration]] = [list(of(samples, "sockjs_sweep_duration_seconds").values())]
    assert 0 <= duration < 1
    # The default registry: the process's own metrics are served alongside.
    assert any(name.startswith("process_") for name, _ in samples)


async def test_stats_snapshot_matches_the_traffic(aiohttp_client: Any) -> None:
    app = web.Application()
    clock = ManualClock(0.0)
    client, endpoint = await serve(aiohttp_client, app, clock, **OPTIONS)
    before = endpoint.stats()
    assert (before.open_sessions, before.messages_in, before.closed) == (0, 0, {})
    stay = await traffic(client, clock)
    stats = endpoint.stats()

    assert stats.prefix == "/m"
    assert {(t, s.value): n for (t, s), n in stats.sessions.items() if n} == HELD
    assert stats.open_sessions == 8
    assert stats.sessions_by_state == {
        SessionState.NEW: 0,
        SessionState.OPEN: 1,
        SessionState.CLOSING: 7,
    }
    assert stats.sessions_by_transport["xhr"] == 3
    assert stats.sessions_by_transport["raw_websocket"] == 0
    assert stats.opened == OPENED
    assert stats.closed == CLOSED
    assert (stats.messages_in, stats.chars_in) == (MESSAGES_IN, CHARS_IN)
    assert (stats.messages_out, stats.chars_out) == (MESSAGES_OUT, CHARS_OUT)
    assert stats.queue_overflows == 1
    assert stats.refused == REFUSED
    assert stats.heartbeats == 1
    assert stats.sweeps >= 1
    assert stats.last_sweep_seconds is not None

    # Totals survive the sessions: the open one closes, the rest expire.
    await stay.close()
    clock.now = 100.0
    await eventually(lambda: endpoint.stats().open_sessions == 0)
    after = endpoint.stats()
    assert after.closed == {1000: 1} | CLOSED
    assert after.opened == OPENED
    assert (after.messages_in, after.messages_out) == (MESSAGES_IN, MESSAGES_OUT)
    assert (after.chars_in, after.chars_out) == (CHARS_IN, CHARS_OUT)
    assert after.refused == REFUSED


async def test_refusals_of_new_sessions_and_websocket_caps(aiohttp_client: Any) -> None:
    app = web.Application()
    clock = ManualClock(0.0)
    client, endpoint = await serve(
        aiohttp_client, app, clock, max_sessions=1, max_message_size=10, max_request_size=100
    )
    url = str(client.make_url("/m"))
    stay = await connect(url, transports="websocket", timeout=3)
    await stay.send("stay")
    assert await bounded(stay.receive()) == "staying"
    # The endpoint is full: a new session on each kind of transport is refused.
    async with client.post(session_url("/m", new_id(), "xhr")) as resp:
        assert resp.status == 503
    async with client.get(session_url("/m", new_id(), "eventsource")) as resp:
        assert resp.status == 503
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect(session_url("/m", new_id(), "websocket"))
    # Caps on a websocket: each closes its socket with 1009.
    for frame in (json.dumps(["z" * 11]), json.dumps(["z" * 150])):
        await stay.close()
        await eventually(lambda: endpoint.stats().open_sessions == 0)
        ws = await client.ws_connect(session_url("/m", new_id(), "websocket"))
        assert (await bounded(ws.receive())).data == "o"
        await ws.send_str(frame)
        msg = await bounded(ws.receive())
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1009
        await ws.close()
    stats = endpoint.stats()
    assert stats.refused == {reason: 0 for reason in REFUSAL_REASONS} | {
        "too_many_sessions": 3,
        "message_size": 1,
        "request_size": 1,
    }


async def test_collector_in_an_app_registry_labels_each_endpoint(aiohttp_client: Any) -> None:
    app = web.Application()
    registry = CollectorRegistry()
    collector = register_collector(app, registry)
    clock = ManualClock(0.0)
    testing.setup(app, "/", handler, clock=clock)
    testing.setup(app, "/other", handler, clock=clock)

    async def metrics(request: web.Request) -> web.Response:
        from prometheus_client import generate_latest

        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app.router.add_get("/app-metrics", metrics)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    await echo_once(str(client.make_url("/other")), "websocket")
    samples = await scrape(client, "/app-metrics")
    assert (
        of(samples, "sockjs_sessions_opened_total", "transport", endpoint="/other")[("websocket",)]
        == 1
    )
    assert (
        of(samples, "sockjs_sessions_opened_total", "transport", endpoint="/")[("websocket",)] == 0
    )
    assert of(samples, "sockjs_sessions_closed_total", "code", endpoint="/other") == {("3000",): 1}
    assert of(samples, "sockjs_sessions_closed_total", "code", endpoint="/") == {}
    # Only this app's metrics: not the process's (that registry is its own).
    assert not any(name.startswith("process_") for name, _ in samples)
    registry.unregister(collector)
    assert await scrape(client, "/app-metrics") == {}


async def test_demo_chat_serves_its_metrics(aiohttp_client: Any) -> None:
    from demo.chat import PREFIX, make_app

    client: TestClient[Any, Any] = await aiohttp_client(make_app())
    async with connect(str(client.make_url(PREFIX)), transports="xhr_streaming", timeout=3) as chat:
        await bounded(chat.receive())  # who is online
        samples = await scrape(client)
    opened = of(samples, "sockjs_sessions_opened_total", "transport", endpoint=PREFIX)
    assert opened[("xhr_streaming",)] == 1
    assert sum(opened.values()) == 1
