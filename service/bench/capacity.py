"""What one home's engine costs as it ages: per-use ingest, round planning, snapshot, memory.

For each ``--days`` checkpoint, a ``--preset`` home simulated with ``--seed`` is trained as the
service would train it up to that day (:mod:`service.bench._trained`: every use ingested,
guided labels from week 1, the codebook fitted on week 1's waveforms, the day's update run),
then:

* ingest: the next ``--uses`` uses are ingested one at a time, as the service does after each
  pairing pass; median and 90th percentile milliseconds per use. The headline is the ratio of
  the last checkpoint's median to the first's: a cost that grows with the home's history
  shows here;
* round: one :meth:`~atlas.engine.CalibrationEngine.plan_round` at the next round slot;
* snapshot: the bytes of a full snapshot as the service stores it
  (:func:`service.storage.jsonarrays.encode_state`), per day of history, and the time to
  encode it; and of the delta the service saves after the timed uses (their uses and events,
  the rest of the state whole);
* restore: decode + :meth:`~atlas.engine.CalibrationEngine.restore` + the first ingest, which
  rebuilds the rows and refits the model: what evicting an engine and bringing it back costs;
* memory: the bytes a live engine holds (traced allocations over ``--engines`` restored
  copies), and how many such engines fit in ``--budget-gb``.

    atlas bench capacity                       # two_bath_house seed 3, days 7 28 90 365
    atlas bench capacity --days 7 28 --uses 20 --engines 5 --json /tmp/capacity.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np

from atlas.engine import CalibrationEngine
from service.bench._trained import TrainedHome, trained_home
from service.storage.jsonarrays import decode_state, encode_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="two_bath_house", help="simulator preset name")
    parser.add_argument("--seed", type=int, default=3, help="simulation seed")
    parser.add_argument(
        "--days", type=int, nargs="+", default=[7, 28, 90, 365], help="checkpoint days (>= 7)"
    )
    parser.add_argument("--uses", type=int, default=30, help="uses ingested one at a time")
    parser.add_argument("--engines", type=int, default=8, help="live engines for the memory")
    parser.add_argument("--budget-gb", type=float, default=4.0, help="worker memory budget")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")


def _ms(seconds: list[float], q: float) -> float:
    return float(np.quantile(seconds, q) * 1e3)


def _time_ingests(home: TrainedHome, n_uses: int) -> list[float]:
    uses = home.later[:n_uses]
    if len(uses) < n_uses:
        raise ValueError(f"only {len(uses)} uses after the checkpoint; lower --uses")
    took = []
    for use in uses:
        start = time.perf_counter()
        home.ingest(use)
        took.append(time.perf_counter() - start)
    return took


def _time_round(home: TrainedHome) -> tuple[float, int]:
    """Seconds of the next round's planning, and how many requests it drew."""
    engine = home.engine
    for offset in (0, 1):
        slot = engine.round_time(home.end + timedelta(days=offset, hours=12))
        if slot is not None:
            break
    else:
        raise RuntimeError("no round slot in the two days after the checkpoint")
    for use in home.later:
        if (use.t_close or use.t) <= slot and use.use_id not in home.ingested:
            home.ingest(use)
    start = time.perf_counter()
    plan = engine.plan_round(slot)
    return time.perf_counter() - start, len(plan.requests)


def _memory_per_engine(home: TrainedHome, blob: bytes, n: int) -> float:
    """Bytes held per live engine (restored, rows built, model fitted), as Python and numpy
    allocations traced by :mod:`tracemalloc` (the resident set of a short run moves by the
    allocator's arenas, not by what an engine holds)."""
    spec, config = home.engine.spec, home.engine.config
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        live = []
        for _ in range(n):
            engine = CalibrationEngine.restore(spec, decode_state(blob), config)
            engine.predictions("valve")  # rows built, model refitted
            live.append(engine)
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()


def measure_day(preset: str, seed: int, day: int, n_uses: int, n_engines: int) -> dict:
    """The figures of the module docstring at one checkpoint."""
    home = trained_home(preset, seed, day, extra_days=2, codebook_days=7)
    mark = home.engine.snapshot_mark()
    ingest_s = _time_ingests(home, n_uses)
    delta = encode_state(home.engine.snapshot(since=mark))
    round_s, n_requests = _time_round(home)
    engine = home.engine
    start = time.perf_counter()
    blob = encode_state(engine.snapshot())
    encode_s = time.perf_counter() - start
    nxt = next(u for u in home.later if u.use_id not in home.ingested)
    start = time.perf_counter()
    back = TrainedHome(
        CalibrationEngine.restore(engine.spec, decode_state(blob), engine.config),
        home.events,
        home.pairing,
        home.later,
        home.end,
    )
    back.ingest(nxt)
    restore_s = time.perf_counter() - start
    per_engine = _memory_per_engine(home, blob, n_engines)
    return {
        "day": day,
        "uses": len(engine.predictions("valve")),
        "ingest_ms_median": _ms(ingest_s, 0.5),
        "ingest_ms_p90": _ms(ingest_s, 0.9),
        "round_ms": round_s * 1e3,
        "round_requests": n_requests,
        "snapshot_kb": len(blob) / 1e3,
        "snapshot_kb_per_day": len(blob) / 1e3 / day,
        "snapshot_encode_ms": encode_s * 1e3,
        "delta_kb": len(delta) / 1e3,
        "restore_ms": restore_s * 1e3,
        "memory_mb_per_engine": per_engine / 1e6,
    }


def run(args: argparse.Namespace) -> int:
    if min(args.days) < 7:
        raise SystemExit("--days: every checkpoint should be >= 7 (after the guided week)")
    rows = []
    for day in sorted(args.days):
        print(
            f"day {day}: simulating and training {args.preset} (seed {args.seed})...",
            file=sys.stderr,
            flush=True,
        )
        rows.append(measure_day(args.preset, args.seed, day, args.uses, args.engines))
    first, last = rows[0], rows[-1]
    budget = args.budget_gb * 1e9
    summary = {
        "preset": args.preset,
        "seed": args.seed,
        "uses_timed": args.uses,
        "ingest_ratio_last_to_first": last["ingest_ms_median"] / first["ingest_ms_median"],
        "live_engines_in_budget": {
            str(r["day"]): int(budget / (r["memory_mb_per_engine"] * 1e6)) for r in rows
        },
        "budget_gb": args.budget_gb,
        "checkpoints": rows,
    }
    print(f"{args.preset} seed {args.seed}; per-use ingest over {args.uses} uses, one at a time")
    print(
        "| day | uses | ingest ms median / p90 | round ms | snapshot kB (per day) | "
        f"delta kB ({args.uses} uses) | restore ms | MB per live engine | live engines in "
        f"{args.budget_gb:g} GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['day']} | {r['uses']} | {r['ingest_ms_median']:.1f} / {r['ingest_ms_p90']:.1f}"
            f" | {r['round_ms']:.0f} | {r['snapshot_kb']:.0f} ({r['snapshot_kb_per_day']:.1f})"
            f" | {r['delta_kb']:.0f} | {r['restore_ms']:.0f} | {r['memory_mb_per_engine']:.2f}"
            f" | {summary['live_engines_in_budget'][str(r['day'])]:,} |"
        )
    print(
        f"ingest median, day {last['day']} / day {first['day']}: "
        f"{summary['ingest_ratio_last_to_first']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
