#!/usr/bin/env python3
"""The long no-loss crash test: 10,000 events, two intake SIGKILLs, a broker restart.

Same harness as ``atlas bench crash`` (``service/bench/crash.py``) with the acceptance defaults;
extra arguments are passed on, e.g. ``--broker-kill`` to SIGKILL the broker instead.

    .venv/bin/python scripts/crash_test.py [--seed N] [--broker-kill]
"""

from __future__ import annotations

import sys

from service.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "crash", "--events", "10000", "--duration", "40", *sys.argv[1:]]))
