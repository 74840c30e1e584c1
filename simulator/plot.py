"""Draw what the sensors see for each valve: its open and close waves on each line.

An installer looks at this before trusting a home spec: every valve should show a clear drop when
it opens and a recovery (with a water-hammer spike and ringing) when it closes, on its own line.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # drawn with the Agg canvas; no pyplot global state

from atlas.homespec import HomeSpec
from simulator.generate import PRE_S, SimEvent, render_uses
from simulator.usage import one_use_each

COLORS = {"hot": "tab:red", "cold": "tab:blue"}


def valve_waves(spec: HomeSpec, *, seed: int = 1, variation: float = 1.0) -> list[SimEvent]:
    """The events of one textbook use of every valve of ``spec``, 40 s apart."""
    valve_ids = [v.id for v in spec.valves]
    uses = one_use_each(spec, valve_ids, spacing_s=40.0, duration_s=6.0)
    return render_uses(spec, uses, seed=seed, variation=variation)


def plot_waves(spec: HomeSpec, out: str | Path, *, seed: int = 1, variation: float = 1.0) -> int:
    """Write a PNG with one panel per valve; returns the number of panels."""
    by_valve: dict[str, list[SimEvent]] = defaultdict(list)
    for sim in valve_waves(spec, seed=seed, variation=variation):
        by_valve[sim.truth["valve"]].append(sim)
    n = len(by_valve)
    cols = 3
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(5.2 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (vid, sims) in zip(axes.ravel(), by_valve.items(), strict=False):
        for sim in sims:
            samples = np.asarray(sim.event.samples, dtype=np.float64)
            t = np.arange(samples.size) / sim.event.sample_rate_hz - PRE_S
            # each wave relative to its own pre-onset level, so opens and closes share an axis
            rel = samples - np.median(samples[: int(0.2 * sim.event.sample_rate_hz)])
            style = "-" if sim.truth["action"] == "open" else "--"
            ax.plot(
                t,
                rel,
                style,
                lw=0.8,
                color=COLORS[sim.event.line],
                label=f"{sim.truth['action']} ({sim.event.line})",
            )
        ax.set_title(vid, fontsize=9)
        ax.axvline(0.0, color="0.7", lw=0.5)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("s after onset", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("kPa vs. before", fontsize=8)
    fig.suptitle(f"{spec.model.name}: one use of each valve (solid open, dashed close)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return n
