"""Import every module of Atlas's installed packages; exit 1 naming each one that fails.

Run by ``.ci/run`` in the runtime-only venv (no dev extras) right after the short demo: a module
that imports something only a dev extra installs breaks there as it would for a user.

Modules that belong to an optional extra (``pip install -e ".[bench]"``) are imported too; their
failure is accepted only when it is the extra's own package that is missing.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

PACKAGES = ("atlas", "rules", "codebook", "simulator", "service")
#: module -> (extra, top-level package that extra provides)
OPTIONAL = {"service.bench._skactiveml": ("bench", "skactiveml")}


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
            except ModuleNotFoundError as exc:
                extra = OPTIONAL.get(module)
                if extra and exc.name == extra[1]:
                    print(f"    {module}: needs the [{extra[0]}] extra ({exc.name}), skipped")
                    continue
                failed.append(f"{module}: {exc!r}")
            except Exception as exc:  # report every failure, not just the first
                failed.append(f"{module}: {exc!r}")
    for line in failed:
        print(f"import failed: {line}", file=sys.stderr)
    print(f"==> imported {count - len(failed)}/{count} modules of {', '.join(PACKAGES)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
