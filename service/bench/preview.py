"""What handing a home's preview model to the provisional process costs, per stored use.

After every stored pass the engine's preview model changes (its context gains the new uses), and
the runtime sends it to the provisional process (service/intake/provisional_process.py). This
trains an engine as the service would (a ``--preset`` home simulated with ``--seed``, every use
up to ``--day`` ingested, one guided label per valve from week 1, the codebook fitted, the
day's update run), then ingests the next ``--uses`` uses one at a time and times, for each new
model, both ways of sending it:

* whole: pickle + unpickle of the :class:`~atlas.engine.preview.PreviewModel`;
* update: :meth:`~atlas.engine.preview.PreviewModel.context_update` in the parent, pickle +
  unpickle, and :meth:`~atlas.engine.preview.PreviewModel.with_context` in the child.

It reports the medians of size and time, and checks that each model rebuilt from updates has the
context the engine's model has.

    atlas bench preview --preset two_bath_house --seed 3 --day 9 --uses 30
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time

from service.bench._trained import trained_home


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="two_bath_house", help="simulator preset name")
    parser.add_argument("--seed", type=int, default=3, help="simulation seed")
    parser.add_argument("--day", type=int, default=9, help="calibration day the engine is at")
    parser.add_argument("--uses", type=int, default=30, help="new uses to hand over")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def measure(preset: str, seed: int, day: int, n_uses: int) -> dict:
    """The figures of the module docstring."""
    home = trained_home(preset, seed, day)
    engine = home.engine
    later = home.later[:n_uses]
    if not later:
        raise ValueError(f"no use after day {day}; simulate a later --day")
    sent = engine.preview_model()
    child = pickle.loads(pickle.dumps(sent))
    whole_s, whole_b, update_s, update_b = [], [], [], []
    for use in later:
        home.ingest(use)
        newer = engine.preview_model()
        start = time.perf_counter()
        blob = pickle.dumps(newer)
        pickle.loads(blob)
        whole_s.append(time.perf_counter() - start)
        whole_b.append(len(blob))
        start = time.perf_counter()
        update = sent.context_update(newer)
        if update is None:
            raise RuntimeError("ingesting a use changed more than the preview model's context")
        blob = pickle.dumps(update)
        child = child.with_context(pickle.loads(blob))
        update_s.append(time.perf_counter() - start)
        update_b.append(len(blob))
        if [u.use_id for u in child.context] != [u.use_id for u in newer.context]:
            raise RuntimeError("the model rebuilt from updates lost the engine's context")
        sent = newer
    return {
        "preset": preset,
        "seed": seed,
        "day": day,
        "uses": len(later),
        "model_version": engine.model_version,
        "context_uses": len(sent.context),
        "whole_kb": statistics.median(whole_b) / 1e3,
        "whole_ms": statistics.median(whole_s) * 1e3,
        "update_kb": statistics.median(update_b) / 1e3,
        "update_ms": statistics.median(update_s) * 1e3,
    }


def run(args: argparse.Namespace) -> int:
    print(
        f"training an engine of {args.preset} (seed {args.seed}) up to day {args.day}...",
        file=sys.stderr,
    )
    r = measure(args.preset, args.seed, args.day, args.uses)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(
        f"{r['preset']} seed {r['seed']}, day {r['day']}: model m{r['model_version']}, "
        f"{r['context_uses']} uses of context; medians over {r['uses']} new uses"
    )
    print(f"  whole model:    {r['whole_kb']:7.1f} KB  {r['whole_ms']:6.2f} ms pickle + unpickle")
    print(
        f"  context update: {r['update_kb']:7.1f} KB  {r['update_ms']:6.2f} ms update + "
        "pickle + unpickle + apply"
    )
    return 0
