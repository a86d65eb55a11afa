"""The benchmark suite's smoke mode runs, so the suite cannot rot.

Every scenario runs once against our server and its baseline, in-process
and with tiny counts. Nothing here looks at speed: benchmarks never assert.
"""

from __future__ import annotations

import math
import os

from aiohttp import web

from benchmarks import loadgen, server
from benchmarks.__main__ import SCENARIOS, table


async def _serve(kind: str, heartbeat: float) -> tuple[web.AppRunner, int]:
    runner = server.make_runner(kind, heartbeat)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_every_scenario_runs_in_smoke_mode() -> None:
    results = {}
    for sc in SCENARIOS:
        kinds = [("ours", "ours")] + ([] if sc.ours_only else [("base", sc.baseline)])
        runs = {}
        for label, kind in kinds:
            runner, port = await _serve(kind, sc.heartbeat)
            try:
                r = await loadgen.scenario(sc.name, port, os.getpid(), "smoke")
            finally:
                await runner.cleanup()
            assert not r.get("timed_out"), (sc.name, kind, r)
            for fig in sc.figures:
                assert math.isfinite(r[fig.key]), (sc.name, kind, fig.key, r)
            assert r["wall"] > 0
            runs[label] = [r]
        results[sc.name] = runs
    text, _ = table(results)
    for sc in SCENARIOS:
        assert sc.title in text


def test_echo_scenario_counts_every_reply() -> None:
    # The pure counting the echo clients rely on: one message per quoted string.
    assert b'a["ping","ping","ping"]'.count(b'"') >> 1 == 3
    assert loadgen.ws_frame(b"x")[:2] == bytes((0x81, 0x81))
