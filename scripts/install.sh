#!/usr/bin/env bash
# Creates .venv and installs Atlas into it, on a fresh machine.
#
# Why a script and not just `pip install .`: scikit-learn-extra 0.3.0 (its last release) ships
# wheels built against numpy 1, which fail at import under numpy 2 ("numpy.dtype size changed").
# It must be compiled from source against the numpy 2 already in the venv, without build isolation
# and without pip's wheel cache (which would hand back a wheel built against numpy 1).
# (The other route, numpy < 2 on Python < 3.12, would pin a numpy 1.26 that gets no more fixes.)
#
# Usage: scripts/install.sh [--dev]     (--dev adds the test and lint tools)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ATLAS_VENV:-.venv}
PY=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

if ! "$VENV/bin/python" -c "import sklearn_extra.cluster" 2>/dev/null; then
    echo "==> building scikit-learn-extra 0.3.0 against numpy 2 (about a minute)"
    pip install "numpy>=2,<3" "scipy>=1.11" "scikit-learn>=1.5" "cython>=3" "setuptools>=69" wheel
    pip install --no-cache-dir --no-deps --no-build-isolation --no-binary scikit-learn-extra \
        "scikit-learn-extra==0.3.0"
fi
echo "==> installing atlas$extras"
pip install -e ".$extras"
"$VENV/bin/python" -c "import sklearn_extra.cluster, numpy; print('    numpy', numpy.__version__, '+ scikit-learn-extra OK')"
