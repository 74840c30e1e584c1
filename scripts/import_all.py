"""Import every module of Atlas's installed packages; exit 1 naming each one that fails.

Run by ``.ci/run`` in the runtime-only venv (no dev extras) right after the short demo: a module
that imports something only a dev extra installs breaks there as it would for a user.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

PACKAGES = ("atlas", "rules", "codebook", "simulator", "service")


def main() -> int:
    failed: list[str] = []
    count = 0
    for name in PACKAGES:
        package = importlib.import_module(name)
        modules = [name] + [
            m.name for m in pkgutil.walk_packages(package.__path__, prefix=name + ".")
        ]
        for module in modules:
            count += 1
            try:
                importlib.import_module(module)
            except Exception as exc:  # report every failure, not just the first
                failed.append(f"{module}: {exc!r}")
    for line in failed:
        print(f"import failed: {line}", file=sys.stderr)
    print(f"==> imported {count - len(failed)}/{count} modules of {', '.join(PACKAGES)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
