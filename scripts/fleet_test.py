"""Issue 7 acceptance at full size: 3 workers, 50 homes, 20,000 events, a worker and the
scheduler leader SIGKILLed. Prints the figures as JSON; exit 0 only if every check holds.

    .venv/bin/python scripts/fleet_test.py [--homes 50] [--events-per-home 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.bench.fleet import acceptance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=50)
    parser.add_argument("--events-per-home", type=int, default=400)
    parser.add_argument("--days", type=int, default=4, help="simulated days generated per home")
    parser.add_argument("--stream-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlas-fleet-test-") as tmp:
        r = acceptance(Path(tmp), n_homes=args.homes, events_per_home=args.events_per_home,
                       days=args.days, stream_s=args.stream_s, seed=args.seed,
                       log=lambda s: print(s, file=sys.stderr))  # fmt: skip
    print(json.dumps(r, indent=2))
    ok = (
        r["stored_rows"] == r["stored_distinct"] == r["events"]
        and r["uses_in_engines"] == r["uses"]
        and r["homes_with_every_due_round"] == r["homes"]
        and r["requests_planned_not_sent"] == 0
        and r["webhook_keys_not_sent_requests"] == 0
        and r["webhook_duplicate_deliveries"] == 0
        and r["failover_s"] is not None
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
