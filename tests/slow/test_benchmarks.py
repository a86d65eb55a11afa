"""The benchmark suite's smoke mode runs, so the suite cannot rot.

Every scenario runs once against our server and its baseline, in-process
and with tiny counts. Nothing here looks at speed: benchmarks never assert.
"""

from __future__ import annotations

import math
import os

from aiohttp import web

from aiohttp_sockjs._aiohttp import writes
from benchmarks import loadgen, server
from benchmarks.__main__ import SCENARIOS, table


async def _serve(
    kind: str, heartbeat: float, args: tuple[str, ...] = ()
) -> tuple[web.AppRunner, int]:
    compression = None
    if "--compression" in args:
        compression = args[args.index("--compression") + 1] == "on"
    runner = server.make_runner(kind, heartbeat, compression, "--no-frame-reuse" not in args)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def test_every_scenario_runs_in_smoke_mode() -> None:
    keep = writes._Deflater.KEEP
    results = {}
    for sc in SCENARIOS:
        kinds = [("ours", "ours", sc.ours_args)]
        kinds += [] if sc.ours_only else [("base", sc.baseline, ())]
        kinds += [(label, "ours", args) for label, args in sc.variants]
        runs = {}
        for label, kind, args in kinds:
            runner, port = await _serve(kind, sc.heartbeat, args)
            try:
                r = await loadgen.scenario(sc.name, port, os.getpid(), "smoke")
            finally:
                await runner.cleanup()
                writes._Deflater.KEEP = keep
            assert not r.get("timed_out"), (sc.name, kind, r)
            for fig in sc.figures:
                assert math.isfinite(r[fig.key]), (sc.name, kind, fig.key, r)
            assert r["wall"] > 0
            if sc.name.endswith("_deflate"):
                # Chromium's offer: accepted unless compression is off.
                wanted = 0 if label == "default settings" else 1
                assert r["deflate_share"] == wanted, (sc.name, label)
            runs[label] = [r]
        results[sc.name] = runs
    text, _ = table(results)
    for sc in SCENARIOS:
        assert sc.title in text


def test_echo_scenario_counts_every_reply() -> None:
    # The pure counting the echo clients rely on: one message per quoted string.
    assert b'a["ping","ping","ping"]'.count(b'"') >> 1 == 3
    assert loadgen.ws_frame(b"x")[:2] == bytes((0x81, 0x81))
