"""Run the benchmark suite and print the table.

    python -m benchmarks            # full counts, 3 repetitions
    python -m benchmarks --quick    # smaller counts, 3 repetitions
    python -m benchmarks --smoke    # tiny counts, 1 repetition (tested)
    python -m benchmarks --only ws_echo_1,ws_latency --reps 5
    python -m benchmarks --only cluster   # cross-process broadcast (needs redis-server)
    python -m benchmarks --loops asyncio   # skip the uvloop rows

Every scenario runs its servers (ours and the baseline) on asyncio's loop
and again on uvloop, as rows of their own; the generator always runs on
uvloop when it is installed. Each scenario runs ours and the baseline
alternately (ours, baseline, ours, baseline...), each run on a fresh
server process pinned to CPU 0 while the load generator runs pinned to
CPU 1; the table shows medians. ``--smoke``
keeps one server per configuration for the whole run, to stay fast.

Then ``cluster`` (``benchmarks/cluster.py``): broadcasts across two server
processes through a private redis-server, beside one process alone, in the
same run; it prints its own table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Figure:
    label: str
    key: str
    unit: str
    higher_is_better: bool
    #: Target on the ratio ours/baseline, or on ours alone when ``absolute``.
    target: float | None = None
    absolute: bool = False
    #: A figure only our server has (the baseline sends no heartbeats).
    ours_only: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    baseline: str  # "baseline" or "baseline-coalesce"
    figures: tuple[Figure, ...]
    heartbeat: float = 25.0
    uvloop: bool = False
    ours_only: bool = False
    #: Extra ``benchmarks.server`` options for our server.
    ours_args: tuple[str, ...] = ()
    #: More configurations of our server, run in the same rotation and
    #: shown as rows of their own against the same baseline runs.
    variants: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def key(self) -> str:
        """The scenario's key in the results: its name, marked for uvloop."""
        return self.name + ("@uvloop" if self.uvloop else "")

    @property
    def server_args(self) -> tuple[str, ...]:
        """Command-line options for ``benchmarks.server``."""
        return ("--heartbeat", str(self.heartbeat)) + (("--uvloop",) if self.uvloop else ())


def _rate(label: str, target: float | None, unit: str = "msgs/s") -> Figure:
    return Figure(label, "value", unit, True, target)


_ON = ("--compression", "on")
_DEFAULT = ("default settings", ())
_DEFLATE_SHARE = Figure("sessions with deflate", "deflate_share", "share", True)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "ws_echo_1", "websocket echo, 1 session", "baseline-coalesce", (_rate("throughput", 0.8),)
    ),
    Scenario(
        "ws_echo_100",
        "websocket echo, 100 sessions",
        "baseline-coalesce",
        (_rate("throughput", 1.0),),
    ),
    Scenario(
        "ws_echo_1_batch",
        "websocket echo, 1 session, batch API",
        "baseline-coalesce",
        (_rate("throughput", 0.8),),
    ),
    Scenario(
        "ws_echo_100_batch",
        "websocket echo, 100 sessions, batch API",
        "baseline-coalesce",
        (_rate("throughput", 1.0),),
    ),
    Scenario(
        "ws_latency",
        "websocket echo latency, 1000 msgs/s",
        "baseline",
        (Figure("p50", "value", "us", False, 1.05), Figure("p99", "p99", "us", False, 1.05)),
    ),
    Scenario(
        "ws_latency_10k",
        "websocket echo latency, 10,000 msgs/s",
        "baseline",
        (
            Figure("p50", "value", "us", False, 1.05),
            Figure("p90", "p90", "us", False),
            Figure("p99", "p99", "us", False, 1.05),
            Figure("p99.9", "p999", "us", False),
            Figure("achieved rate", "rate", "msgs/s", True),
        ),
    ),
    Scenario(
        "broadcast_1",
        "broadcast 1 msg to 1000 websockets",
        "baseline",
        (_rate("deliveries", 1.0, "deliveries/s"), Figure("time until all", "all_ms", "ms", False)),
    ),
    Scenario(
        "broadcast_1_10k",
        "broadcast 1 msg to 10,000 websockets",
        "baseline",
        (_rate("deliveries", 1.0, "deliveries/s"), Figure("time until all", "all_ms", "ms", False)),
    ),
    Scenario(
        "broadcast_20",
        "broadcast 20-msg bursts to 1000 websockets",
        "baseline-coalesce",
        (_rate("deliveries", 1.0, "deliveries/s"), Figure("time until all", "all_ms", "ms", False)),
    ),
    Scenario(
        "broadcast_20_batch",
        "broadcast 20-msg bursts to 1000 websockets, broadcast_many",
        "baseline-coalesce",
        (_rate("deliveries", 1.0, "deliveries/s"), Figure("time until all", "all_ms", "ms", False)),
    ),
    Scenario(
        "xhr_streaming_echo",
        "xhr_send + xhr_streaming echo, 20 sessions",
        "baseline",
        (_rate("throughput", 1.2),),
    ),
    Scenario(
        "xhr_polling",
        "xhr polling round trips, 20 sessions",
        "baseline",
        (_rate("round trips", 1.3, "round trips/s"),),
    ),
    Scenario(
        "ws_churn",
        "websocket open+close, 10 at a time",
        "baseline",
        (_rate("churn", 1.2, "sessions/s"),),
    ),
    Scenario(
        "idle_ws",
        "5000 idle websocket sessions",
        "baseline",
        (
            Figure("RSS per session", "value", "bytes", False, 1.1),
            Figure("server CPU", "cpu_pct", "% core", False, 0.5, absolute=True),
        ),
    ),
    Scenario(
        "idle_xhr",
        "2000 idle xhr_streaming sessions",
        "baseline",
        (
            Figure("RSS per session", "value", "bytes", False, 1.1),
            Figure("server CPU", "cpu_pct", "% core", False, 0.5, absolute=True),
        ),
    ),
    # The baseline sends the same heartbeats (see benchmarks.server).
    Scenario(
        "idle_ws_hb25",
        "5000 idle websockets, default 25 s heartbeat, 26 s window",
        "baseline",
        (
            Figure("server CPU", "cpu_pct", "% core", False, 1.2),
            Figure("server CPU per heartbeat", "cpu_per_beat_us", "us", False, 1.2),
            Figure("sessions with a heartbeat", "with_heartbeat", "share", True),
            Figure("heartbeats", "heartbeats_per_s", "/s", True),
        ),
    ),
    Scenario(
        "idle_ws_hb",
        "5000 idle websockets, heartbeat_delay=1",
        "baseline",
        (
            Figure("server CPU", "cpu_pct", "% core", False, 1.2),
            Figure("server CPU per heartbeat", "cpu_per_beat_us", "us", False, 1.2),
            Figure("sessions with a heartbeat", "with_heartbeat", "share", True),
            Figure("heartbeats", "heartbeats_per_s", "/s", True),
        ),
        heartbeat=1.0,
    ),
    Scenario(
        "idle_xhr_hb",
        "2000 idle xhr_streaming, heartbeat_delay=1",
        "baseline",
        (
            Figure("sessions with a heartbeat", "with_heartbeat", "share", True, ours_only=True),
            Figure("heartbeats", "heartbeats_per_s", "/s", True, ours_only=True),
            Figure("server CPU", "cpu_pct", "% core", False, ours_only=True),
        ),
        heartbeat=1.0,
        ours_only=True,
    ),
    # The generator offers permessage-deflate as Chromium does; ours runs
    # with compression on (the baseline, plain aiohttp, accepts it too) and
    # with its default settings (compression off: nothing is negotiated).
    Scenario(
        "ws_echo_1_deflate",
        "Chromium's deflate offer: websocket echo, 1 session",
        "baseline-coalesce",
        (_rate("throughput", None), _DEFLATE_SHARE),
        ours_args=_ON,
        variants=(_DEFAULT,),
    ),
    Scenario(
        "ws_echo_100_deflate",
        "Chromium's deflate offer: websocket echo, 100 sessions",
        "baseline-coalesce",
        (_rate("throughput", None), _DEFLATE_SHARE),
        ours_args=_ON,
        variants=(_DEFAULT,),
    ),
    Scenario(
        "broadcast_1_deflate",
        "Chromium's deflate offer: broadcast 1 msg to 1000 websockets",
        "baseline",
        (_rate("deliveries", None, "deliveries/s"), _DEFLATE_SHARE),
        ours_args=_ON,
        variants=(_DEFAULT,),
    ),
    Scenario(
        "broadcast_1_4k_deflate",
        "Chromium's deflate offer: broadcast 1 msg of 4 KiB JSON to 1000 websockets",
        "baseline",
        (_rate("deliveries", None, "deliveries/s"), _DEFLATE_SHARE),
        ours_args=_ON,
        variants=(_DEFAULT, ("compression on, frame not reused", (*_ON, "--no-frame-reuse"))),
    ),
    Scenario(
        "idle_ws_deflate",
        "Chromium's deflate offer: 1000 websockets after one chat message each way",
        "baseline",
        (Figure("RSS per session", "value", "bytes", False),),
        ours_args=_ON,
        variants=(_DEFAULT,),
    ),
    Scenario(
        "broadcast_20_deflate",
        "Chromium's deflate offer: broadcast 20-msg bursts to 1000 websockets",
        "baseline-coalesce",
        (_rate("deliveries", None, "deliveries/s"), _DEFLATE_SHARE),
        ours_args=_ON,
        variants=(_DEFAULT,),
    ),
)


def _on_uvloop(sc: Scenario) -> Scenario:
    return dataclasses.replace(sc, uvloop=True)


class Server:
    """A server subprocess pinned to CPU 0."""

    def __init__(self, kind: str, args: tuple[str, ...], root: str = ROOT) -> None:
        # ``root``: the checkout whose server (and aiohttp_sockjs) runs.
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-m", "benchmarks.server", kind, *args],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server {kind} did not start")
        self.port = int(line)
        self.pid = self.proc.pid

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_generator(scenario: str, server: Server, scale: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            scenario,
            "--port",
            str(server.port),
            "--server-pid",
            str(server.pid),
            "--scale",
            scale,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400 if scale == "full" else 200,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{scenario}: generator failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _efficiency(runs: list[dict[str, Any]]) -> float:
    """Median work per second of server CPU: robust when the CPU is shared."""
    return statistics.median(
        float(r["value"]) * float(r["wall"]) / max(float(r["server_cpu"]), 0.01) for r in runs
    )


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _rows(
    results: dict[str, dict[str, list[dict[str, Any]]]],
) -> list[tuple[Scenario, str, list[dict[str, Any]], list[dict[str, Any]]]]:
    """(scenario, label, our runs, baseline runs) for each row group of the table."""
    rows = []
    for sc in (s for base in SCENARIOS for s in (base, _on_uvloop(base))):
        if sc.key not in results:
            continue
        res = results[sc.key]
        base = res.get("base", [])
        ours_label = ", ours: compression on" if "--compression" in sc.ours_args else ""
        rows.append((sc, ours_label, res["ours"], base))
        for label, _ in sc.variants:
            if res.get(label):
                rows.append((sc, f", ours: {label}", res[label], base))
    return rows


def table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> tuple[str, list[str]]:
    head = (
        "| Scenario | Figure | Ours | Baseline | Ratio | Ratio per CPU-s | Target | Met "
        "| Server CPU ours / base | Generator CPU ours / base |\n"
        "|---|---|--:|--:|--:|--:|--:|:-:|--:|--:|\n"
    )
    rows = []
    missed = []
    for sc, label, ours, base in _rows(results):
        busy = "{:.0f}% / {}".format(
            100 * _median(ours, "server_cpu") / _median(ours, "wall"),
            f"{100 * _median(base, 'server_cpu') / _median(base, 'wall'):.0f}%" if base else "-",
        )
        gen = "{:.0f}% / {}".format(
            100 * _median(ours, "gen_cpu") / _median(ours, "wall"),
            f"{100 * _median(base, 'gen_cpu') / _median(base, 'wall'):.0f}%" if base else "-",
        )
        for i, fig in enumerate(sc.figures):
            o = _median(ours, fig.key)
            eff_s = "-"
            if fig.ours_only or not base:
                b_s, ratio_s, ratio = "-", "-", None
            else:
                b = _median(base, fig.key)
                ratio = o / b if b else float("inf")
                b_s, ratio_s = _fmt(b), f"{ratio:.2f}"
                if fig.key == "value" and fig.higher_is_better:
                    eff = _efficiency(ours) / _efficiency(base)
                    eff_s = f"{eff:.2f}"
            target_s, met = "-", ""
            eff_ok: bool | None = None
            if fig.target is not None:
                if fig.absolute:
                    target_s = ("<= " if not fig.higher_is_better else ">= ") + f"{fig.target}"
                    ok = o <= fig.target if not fig.higher_is_better else o >= fig.target
                elif ratio is not None:
                    target_s = ("<= " if not fig.higher_is_better else ">= ") + f"{fig.target}x"
                    ok = ratio <= fig.target if not fig.higher_is_better else ratio >= fig.target
                    if eff_s != "-":
                        eff_ok = float(eff_s) >= fig.target
                else:
                    ok = True
                met = "yes" if ok else "**no**"
                if eff_ok is not None:
                    met += " / " + ("yes" if eff_ok else "**no**")
                if not ok:
                    missed.append(f"{sc.key} {fig.label}")
            loop = ", uvloop" if sc.uvloop else ""
            name = f"{sc.title}{loop}{label} (vs {sc.baseline})" if i == 0 else ""
            cpu = (busy, gen) if i == 0 else ("", "")
            rows.append(
                f"| {name} | {fig.label} [{fig.unit}] | {_fmt(o)} | {b_s} | {ratio_s} | {eff_s} "
                f"| {target_s} | {met} | {cpu[0]} | {cpu[1]} |"
            )
    return head + "\n".join(rows) + "\n", missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="aiohttp-sockjs benchmarks")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller counts")
    mode.add_argument("--smoke", action="store_true", help="tiny counts, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--json", default="", help="also write raw results to this file")
    parser.add_argument(
        "--loops", default="asyncio,uvloop", help="event loops for the servers (asyncio,uvloop)"
    )
    args = parser.parse_args(argv)
    scale = "smoke" if args.smoke else "quick" if args.quick else "full"
    reps = args.reps or (1 if args.smoke else 3)
    only = {s for s in args.only.split(",") if s}
    unknown = only - {s.name for s in SCENARIOS} - {"cluster"}
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    loops = [x for x in args.loops.split(",") if x]
    if not loops or set(loops) - {"asyncio", "uvloop"}:
        parser.error("--loops takes asyncio, uvloop or both")
    scenarios = [
        sc if loop == "asyncio" else _on_uvloop(sc)
        for sc in SCENARIOS
        if not only or sc.name in only
        for loop in loops
    ]
    reuse: dict[tuple[str, tuple[str, ...]], Server] = {}

    def server(kind: str, sargs: tuple[str, ...]) -> Server:
        if not args.smoke:
            return Server(kind, sargs)
        key = (kind, sargs)
        if key not in reuse:
            reuse[key] = Server(kind, sargs)
        return reuse[key]

    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    started = time.time()
    try:
        for sc in scenarios:
            res: dict[str, list[dict[str, Any]]] = {"ours": [], "base": []}
            for label, _ in sc.variants:
                res[label] = []
            results[sc.key] = res
            for rep in range(reps):
                kinds = [("ours", "ours", sc.ours_args)]
                kinds += [] if sc.ours_only else [("base", sc.baseline, ())]
                kinds += [(label, "ours", vargs) for label, vargs in sc.variants]
                for label, kind, extra in kinds:
                    srv = server(kind, sc.server_args + extra)
                    try:
                        res[label].append(run_generator(sc.name, srv, scale))
                    finally:
                        if not args.smoke:
                            srv.stop()
                print(f"# {sc.key} rep {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    finally:
        for srv in reuse.values():
            srv.stop()
    text, missed = table(results)
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}, "
        f"Python {platform.python_version()}, scale={scale}, reps={reps}, "
        f"{time.time() - started:.0f} s"
    )
    if results:
        print(text)
    if missed:
        print("Targets missed: " + ", ".join(missed))
    if any(r.get("timed_out") for v in results.values() for rs in v.values() for r in rs):
        print("Warning: some runs hit their deadline; their figures are partial.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if not only or "cluster" in only:
        # Its own process: it pins itself (the generator) to CPU 1.
        command = [sys.executable, "-m", "benchmarks.cluster", "--scale", scale]
        command += ["--reps", str(reps)]
        if args.json:
            command += ["--json", args.json.removesuffix(".json") + "-cluster.json"]
        sys.stdout.flush()
        subprocess.run(command, cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
