"""Browser-test fixtures: reuse the API test factories (seeded homes, tokens)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service" / "api"))
