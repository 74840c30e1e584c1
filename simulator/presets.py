"""Ready-made homes (TOML home specs shipped in ``simulator/presets/``).

Each preset is an ordinary home spec file, so installers can copy one as the starting point of
their own home (``atlas-sim presets`` lists them).
"""

from __future__ import annotations

import tomllib
from importlib import resources

from atlas.homespec import HomeSpec, parse_home_spec

#: Preset name -> one-line description (shown by ``atlas-sim presets``).
PRESETS: dict[str, str] = {
    "apartment": "1-bath apartment, 2 residents, PEX, PRV; two-handle bath sink and tub, "
    "single-handle kitchen, shower, dishwasher, washing machine",
    "two_bath_house": "2-bath house, 3 residents, copper + PEX upstairs, PRV; two identical "
    "toilets on near-identical runs, shower, tub, dishwasher, washer, hose",
    "three_bath_house": "3-bath house, 4 residents, copper + CPVC, no PRV; three toilets (two "
    "identical), two showers/tubs, dishwasher, washer, two hoses",
}


def preset_text(name: str) -> str:
    """The TOML source of preset ``name``."""
    if name not in PRESETS:
        raise KeyError(f"preset={name!r} is not one of {sorted(PRESETS)}.")
    return resources.files("simulator").joinpath(f"presets/{name}.toml").read_text("utf-8")


def load_preset(name: str) -> HomeSpec:
    """The validated :class:`HomeSpec` of preset ``name``."""
    return parse_home_spec(tomllib.loads(preset_text(name)))
