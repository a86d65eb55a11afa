"""Our server from this checkout against our server from another one, in one run.

    git worktree add /tmp/before <commit>
    python -m benchmarks.ab /tmp/before --quick --reps 5 [--only ws_echo_1,...]
    python -m benchmarks.ab /tmp/before --quick --metrics   # this side serves /metrics

For a change to our own server, where the plain aiohttp baseline of
``python -m benchmarks`` is the wrong yardstick (a cost of a few percent
drowns in the machine's noise between two separate runs). Each scenario
runs this checkout's server ("A") and the other checkout's ("B") one after
the other, the order swapped every repetition, each on a fresh server
process pinned to CPU 0, driven by this checkout's load generator pinned to
CPU 1. The table shows medians, the ratio A / B on the figure, and for
throughputs also on work per server CPU-second, which holds up better when
other jobs share the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

from benchmarks.__main__ import SCENARIOS, Server, run_generator

#: By default: every scenario with a baseline ratio, ours in its default settings.
DEFAULT = tuple(s.name for s in SCENARIOS if not s.ours_only and not s.ours_args and not s.uvloop)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _per_cpu(runs: list[dict[str, Any]]) -> float:
    return statistics.median(
        float(r["value"]) * float(r["wall"]) / max(float(r["server_cpu"]), 0.01) for r in runs
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A/B: this checkout's server vs another's")
    parser.add_argument("other", help="the other checkout (a git worktree)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller counts")
    mode.add_argument("--smoke", action="store_true", help="tiny counts")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--metrics", action="store_true", help="A serves /metrics")
    args = parser.parse_args(argv)
    other = os.path.abspath(args.other)
    if not os.path.isfile(os.path.join(other, "benchmarks", "server.py")):
        parser.error(f"{other} is not a checkout with benchmarks/server.py")
    scale = "smoke" if args.smoke else "quick" if args.quick else "full"
    names = [n for n in args.only.split(",") if n] or list(DEFAULT)
    by_name = {s.name: s for s in SCENARIOS}
    unknown = set(names) - set(by_name)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    started = time.time()
    print(
        "| Scenario | Figure | A | B | A / B | A / B per CPU-s | A worse by |\n"
        "|---|---|--:|--:|--:|--:|--:|"
    )
    for name in names:
        sc = by_name[name]
        a_args = sc.server_args + (("--metrics",) if args.metrics else ())
        sides = {"A": (a_args, None), "B": (sc.server_args, other)}
        runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        for rep in range(args.reps):
            order = ("A", "B") if rep % 2 == 0 else ("B", "A")
            for side in order:
                sargs, root = sides[side]
                srv = Server("ours", sargs) if root is None else Server("ours", sargs, root)
                try:
                    runs[side].append(run_generator(name, srv, scale))
                finally:
                    srv.stop()
            print(f"# {name} rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
        for i, fig in enumerate(sc.figures):
            a, b = _median(runs["A"], fig.key), _median(runs["B"], fig.key)
            ratio = a / b if b else float("inf")
            worse = (1 - ratio) if fig.higher_is_better else (ratio - 1)
            per_cpu = "-"
            if fig.key == "value" and fig.higher_is_better:
                per = _per_cpu(runs["A"]) / _per_cpu(runs["B"])
                per_cpu = f"{per:.3f}"
            title = sc.title if i == 0 else ""
            print(
                f"| {title} | {fig.label} [{fig.unit}] | {a:,.1f} | {b:,.1f} | {ratio:.3f} "
                f"| {per_cpu} | {100 * worse:+.1f}% |",
                flush=True,
            )
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python "
        f"{platform.python_version()}, scale={scale}, reps={args.reps}, A=this checkout"
        f"{' with /metrics' if args.metrics else ''}, B={other}, {time.time() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
