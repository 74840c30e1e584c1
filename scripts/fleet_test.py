"""The several-worker acceptance run at full size: 3 workers, PostgreSQL and Mosquitto on this
machine, 50 simulated homes, 20,000 events; one worker SIGKILLed mid-stream and restarted with
its id, the scheduler leader SIGKILLed just before a round. Prints the figures as JSON and the
checks that failed; exit 0 only if every check holds (``service.bench.fleet.acceptance_failures``).

    .venv/bin/python scripts/fleet_test.py [--homes 50] [--events 20000] [--speed 480] [--seed 1]

About 16 minutes: the simulated clock runs at ``--speed`` (service seconds per wall second);
``service.bench.fleet.ACCEPTANCE_SPEED`` explains why not faster.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.bench.fleet import ACCEPTANCE_SPEED, acceptance, acceptance_failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=50)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--speed", type=float, default=ACCEPTANCE_SPEED)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the logs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlas-fleet-test-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        r = acceptance(
            workdir,
            n_homes=args.homes,
            n_events=args.events,
            speed=args.speed,
            seed=args.seed,
            log=lambda s: print(s, file=sys.stderr),
        )
    failed = acceptance_failures(r)
    print(json.dumps(r | {"failed_checks": failed}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
