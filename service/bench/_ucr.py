"""UCR datasets, the reference classifiers and the protocol of ``atlas bench codebook-ucr``.

The datasets and two of the references come from optional packages (``pip install
'atlas-water[ucr]'``: sktime and tslearn). They are imported inside functions through
:func:`require`, never at module level: a runtime-only install imports every module of the packages
(scripts/import_all.py) and must not need them.
"""

from __future__ import annotations

import importlib
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from codebook import Codebook

#: Loader name in ``sktime.datasets`` per dataset (all ship inside the sktime wheel).
SKTIME_LOADERS = {
    "GunPoint": "load_gunpoint",
    "ArrowHead": "load_arrow_head",
    "OSULeaf": "load_osuleaf",
    "ItalyPowerDemand": "load_italy_power_demand",
    "ACSF1": "load_acsf1",
}
#: Datasets of tslearn's ``CachedDatasets`` (shipped inside the tslearn wheel).
TSLEARN_CACHED = ("Trace",)
DATASETS = (*SKTIME_LOADERS, *TSLEARN_CACHED)
#: The subset the one generic setting was chosen on (named in docs/codebook.md before any run).
TUNING = ("GunPoint", "OSULeaf")
METHODS = ("codebook", "1nn-euclidean", "1nn-dtw", "minirocket")
RIDGE_ALPHAS = np.logspace(-3, 3, 10)
LINEAR = ("ridge", "ridge-unscaled", "logistic")
INSTALL_HINT = (
    "pip install 'atlas-water[ucr]' (the ucr extra; in a checkout: pip install -e '.[ucr]')"
)


@dataclass(frozen=True)
class Dataset:
    """One UCR dataset on its official split; series are 1-D float64 arrays (any lengths)."""

    name: str
    train: list[np.ndarray]
    y_train: np.ndarray
    test: list[np.ndarray]
    y_test: np.ndarray


@dataclass(frozen=True)
class Result:
    """Accuracy of one method on one dataset for one label budget (``k=None``: full split)."""

    dataset: str
    method: str
    k: int | None
    draw: int
    accuracy: float
    seconds: float


def require(module: str) -> ModuleType:
    """Import an optional module of the ``ucr`` extra, or fail saying how to install it."""
    try:
        with warnings.catch_warnings():  # tslearn warns at import that h5py (unused here) is absent
            warnings.filterwarnings("ignore", message="h5py not installed", category=UserWarning)
            return importlib.import_module(module)
    except ImportError as exc:
        raise SystemExit(
            f"atlas bench codebook-ucr needs {module.split('.')[0]} ({exc}); install the "
            f"optional extra: {INSTALL_HINT}"
        ) from exc


def load(name: str) -> Dataset:
    """The official train/test split of UCR dataset ``name``, read offline from the wheels."""
    if name in SKTIME_LOADERS:
        loader = getattr(require("sktime.datasets"), SKTIME_LOADERS[name])
        parts = [loader(split=split, return_type="numpy2d") for split in ("train", "test")]
        (x_train, y_train), (x_test, y_test) = parts
    elif name in TSLEARN_CACHED:
        cached = require("tslearn.datasets").CachedDatasets()
        x_train, y_train, x_test, y_test = cached.load_dataset(name)
        x_train, x_test = x_train[:, :, 0], x_test[:, :, 0]
    else:
        raise ValueError(f"dataset={name!r} is not one of {list(DATASETS)}.")
    return Dataset(
        name=name,
        train=[np.asarray(x, dtype=np.float64) for x in x_train],
        y_train=np.asarray(y_train).astype(str),
        test=[np.asarray(x, dtype=np.float64) for x in x_test],
        y_test=np.asarray(y_test).astype(str),
    )


def few_labels(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` random examples per class (all of a class that has fewer), sorted."""
    picked = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        picked.append(rng.choice(members, min(k, members.size), replace=False))
    return np.sort(np.concatenate(picked))


def linear_model(kind: str) -> Pipeline:
    """The linear model on top of codebook (and MiniRocket) features."""
    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    if kind == "ridge-unscaled":
        return make_pipeline(RidgeClassifierCV(alphas=RIDGE_ALPHAS))
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    raise ValueError(f"linear={kind!r} should be one of {list(LINEAR)}.")


# ---------------------------------------------------------------------- feature methods
def fit_encoder(
    method: str, series: list[np.ndarray], seed: int, codebook_params: dict[str, Any]
) -> Callable[[list[np.ndarray]], np.ndarray]:
    """``method``'s ("codebook": the generic codebook with ``codebook_params`` overrides, or
    "minirocket") encoder, fitted without labels on ``series``: a function series -> features.
    The few-label protocol fits it on the whole training split, as a home keeps its unlabeled
    windows."""
    if method == "codebook":
        return Codebook.generic(**{"random_state": seed, **codebook_params}).fit(series).transform
    rocket = require("sktime.transformations.panel.rocket").MiniRocket
    transform = rocket(random_state=seed, n_jobs=1).fit(_panel(series))
    return lambda xs: np.asarray(transform.transform(_panel(xs)), dtype=np.float64)


def _panel(series: list[np.ndarray]) -> np.ndarray:
    """sktime's numpy3D panel (n_instances, 1, n_timepoints); the UCR sets here are equal-length."""
    return np.stack(series)[:, None, :]


def nn_predict(metric: str, train: list[np.ndarray], y: np.ndarray, test: list[np.ndarray]):
    """1-nearest-neighbour predictions: Euclidean (scikit-learn) or full-window DTW (tslearn)."""
    if metric == "euclidean":
        return KNeighborsClassifier(n_neighbors=1).fit(np.stack(train), y).predict(np.stack(test))
    neighbours = require("tslearn.neighbors")
    model = neighbours.KNeighborsTimeSeriesClassifier(n_neighbors=1, metric="dtw", n_jobs=1)
    return model.fit(np.stack(train)[:, :, None], y).predict(np.stack(test)[:, :, None])


# ---------------------------------------------------------------------- protocol
def evaluate(
    data: Dataset,
    methods: Sequence[str],
    labels: Sequence[int],
    draws: int,
    codebook_params: dict[str, Any],
    linear: str,
    seed: int = 0,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> list[Result]:
    """Accuracy of every method on the official split (``k=None``) and, per ``k`` in
    ``labels``, on ``draws`` draws of ``k`` labeled training series per class (the same draws
    for every method; label draw ``d`` of ``k`` uses ``np.random.default_rng([seed, k, d])``)."""
    splits = [(None, 0, np.arange(len(data.train)))]
    for k in labels:
        for d in range(draws):
            rng = np.random.default_rng([seed, k, d])
            splits.append((k, d, few_labels(data.y_train, k, rng)))
    results = []
    for method in methods:
        started = time.perf_counter()
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {list(METHODS)}.")
        encoder = None
        if method in ("codebook", "minirocket"):
            encoder = fit_encoder(method, data.train, seed, codebook_params)
        if encoder is not None:
            train_features, test_features = encoder(data.train), encoder(data.test)
        fit_s = time.perf_counter() - started
        for k, d, idx in splits:
            t0 = time.perf_counter()
            y = data.y_train[idx]
            if encoder is not None:
                model = linear_model(linear).fit(train_features[idx], y)
                predicted = model.predict(test_features)
            else:
                metric = method.removeprefix("1nn-")
                predicted = nn_predict(metric, [data.train[i] for i in idx], y, data.test)
            seconds = time.perf_counter() - t0 + (fit_s if k is None else 0.0)
            accuracy = float(np.mean(predicted == data.y_test))
            results.append(Result(data.name, method, k, d, accuracy, seconds))
            if k is None:
                log(f"  {data.name} {method}: official split {accuracy:.1%} ({seconds:.1f} s)")
        if labels:
            few = [r for r in results if r.method == method and r.k is not None]
            log(
                f"  {data.name} {method}: {len(few)} few-label fits done "
                f"({sum(r.seconds for r in few):.1f} s)"
            )
    return results


def encode_rate(
    data: Dataset, method: str, codebook_params: dict[str, Any], seed: int, repeats: int
) -> tuple[float, float]:
    """Test series encoded per second on one core (wall, CPU) by ``method``'s encoder
    ("codebook" or "minirocket") fitted on the training split: ``transform`` of the whole
    test split, best of ``repeats`` passes after a warm-up."""
    with threadpool_limits(limits=1):
        encode = fit_encoder(method, data.train, seed, codebook_params)
        encode(data.test)
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            encode(data.test)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return len(data.test) / min(walls), len(data.test) / max(min(cpus), 1e-9)
