"""What the rules see of a water use: the paired record plus its transients' physical features.

A :class:`~atlas.uses.WaterUse` only names its events; the rules need how each valve moved (how
fast it closed, how hard the water hammered). :class:`UseView` carries both, and the derived
quantities every rule reasons with, so the rules read like the physics they encode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from atlas.transient import TransientFeatures
from atlas.uses import WaterUse

#: Steps smaller than this are within a few noise levels; ratios to them are meaningless.
_MIN_STEP_KPA = 0.3


@dataclass(frozen=True)
class UseView:
    """One water use as the rule classifier sees it.

    Attributes
    ----------
    use : WaterUse
        The paired use (its lines, times, status and per-line pressure drop).
    open_features : tuple of TransientFeatures
        Features of the open events, aligned with ``use.open_event_ids``.
    close_features : tuple of TransientFeatures
        Features of the close events, aligned with ``use.close_event_ids``.
    event_lines : dict of str to str
        The line of each event by event id, when known (``PairingResult.lines``); rules that
        compare a ring with a line's pipe run skip events whose line is unknown.
    """

    use: WaterUse
    open_features: tuple[TransientFeatures, ...] = ()
    close_features: tuple[TransientFeatures, ...] = ()
    event_lines: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if len(self.open_features) != len(self.use.open_event_ids):
            raise ValueError(
                f"open_features has {len(self.open_features)} items for use {self.use.use_id!r} "
                f"with {len(self.use.open_event_ids)} open events."
            )
        if len(self.close_features) != len(self.use.close_event_ids):
            raise ValueError(
                f"close_features has {len(self.close_features)} items for use "
                f"{self.use.use_id!r} with {len(self.use.close_event_ids)} close events."
            )

    @property
    def lines(self) -> frozenset[str]:
        return frozenset(self.use.lines)

    @property
    def duration_s(self) -> float | None:
        return self.use.duration_s

    def features_by_line(self) -> list[tuple[str, TransientFeatures]]:
        """(line, features) of every event whose line is known."""
        ids = self.use.open_event_ids + self.use.close_event_ids
        feats = self.open_features + self.close_features
        return [
            (self.event_lines[e], f)
            for e, f in zip(ids, feats, strict=True)
            if e in self.event_lines
        ]

    @property
    def close_rise_s(self) -> float | None:
        """Slowest close rise time over the lines: how long the valve took to shut.

        The slowest line is used because one sensor far from the valve can blur the front,
        never sharpen it.
        """
        if not self.close_features:
            return None
        return max(f.rise_time_s for f in self.close_features)

    @property
    def close_surge_ratio(self) -> float | None:
        """Largest water-hammer spike of the close relative to its level step (dimensionless)."""
        if not self.close_features:
            return None
        return max(
            abs(f.surge_kpa) / max(abs(f.step_kpa), _MIN_STEP_KPA) for f in self.close_features
        )

    @property
    def close_surge_kpa(self) -> float | None:
        """Largest water-hammer spike of the close over the lines (kPa)."""
        if not self.close_features:
            return None
        return max(abs(f.surge_kpa) for f in self.close_features)

    @property
    def drop_kpa(self) -> float:
        """Total pressure drop over the lines while the water ran, a proxy for the flow rate."""
        return float(sum(self.use.drop_kpa.values()))


def build_views(
    uses: Sequence[WaterUse],
    features: Mapping[str, TransientFeatures],
    lines: Mapping[str, str] | None = None,
) -> list[UseView]:
    """Attach the transient features and event lines (by event id, e.g.
    ``PairingResult.features`` and ``PairingResult.lines``) to uses."""
    views = []
    for use in uses:
        missing = [e for e in use.event_ids if e not in features]
        if missing:
            raise KeyError(f"features has no entry for event(s) {missing} of use {use.use_id!r}")
        views.append(
            UseView(
                use,
                tuple(features[e] for e in use.open_event_ids),
                tuple(features[e] for e in use.close_event_ids),
                {e: lines[e] for e in use.event_ids if e in lines} if lines else {},
            )
        )
    return views
