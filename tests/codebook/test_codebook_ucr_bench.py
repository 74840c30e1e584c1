"""``atlas bench codebook-ucr`` on a tiny made-up dataset (the UCR files are not needed)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from service.bench import _ucr, codebook_ucr


def _tiny(name: str, seed: int) -> _ucr.Dataset:
    """Two classes of 96-sample series: a sine burst or a square burst at a random place."""
    rng = np.random.default_rng(seed)

    def series(kind: int) -> np.ndarray:
        x = rng.normal(0, 0.05, 96)
        start = rng.integers(0, 72)
        t = np.arange(24)
        x[start : start + 24] += np.sin(2 * np.pi * t / 24) if kind else np.sign(t - 11.5)
        return x

    labels = np.repeat(["a", "b"], 12)
    train = [series(int(y == "a")) for y in labels]
    test = [series(int(y == "a")) for y in labels]
    return _ucr.Dataset(name, train, labels, test, labels.copy())


def test_tables_on_a_tiny_dataset_are_sane():
    data = [_tiny("GunPoint", 0), _tiny("Tiny", 1)]  # one "tuning", one "held back" row
    logged: list[str] = []
    lines = codebook_ucr.tables(
        data,
        ["codebook", "1nn-euclidean"],
        labels=[5],
        draws=2,
        seed=0,
        linear="ridge",
        repeats=1,
        codebook_params={"n_atoms": 8},
        log=logged.append,
    )
    text = "\n".join(lines)
    assert "| codebook + linear | 1-NN Euclidean |" in text
    for table in text.split("\n\n"):  # every row of a table has the header's cells
        rows = [line for line in table.splitlines() if line.startswith("|")]
        assert len({row.replace("\\|", "").count("|") for row in rows}) <= 1, table
    official = lines[: lines.index("", 2)]  # the first table, up to the next blank line
    rows = {line.split(" | ")[0].strip("| "): line for line in official if line.startswith("| ")}
    tiny = rows["Tiny"].split(" | ")
    assert tiny[1:4] == ["held back", "24 / 24 x 96", "2"]
    accuracies = [float(v.rstrip("%")) for v in tiny[4:6]]
    assert accuracies[0] >= 90.0 and 0.0 <= accuracies[1] <= 100.0
    assert re.fullmatch(r"[\d,]+ /s \\\| [\d,]+ /s", tiny[6])  # codebook encode speed
    assert tiny[7].rstrip(" |") == "-"  # MiniRocket not run
    assert "tuning" in rows["GunPoint"]
    assert any(line.startswith("| **mean, held back** (1) | 5 |") for line in lines)
    few = [line for line in lines if line.startswith("| Tiny | 5 |")]
    assert len(few) == 1 and few[0].count("±") == 2
    assert any("official split" in line for line in logged)


def test_few_label_draws_take_k_per_class_and_differ_by_seed():
    y = np.repeat(["a", "b", "c"], [10, 4, 7])
    idx = _ucr.few_labels(y, 5, np.random.default_rng([0, 5, 0]))
    assert sorted(np.unique(y[idx], return_counts=True)[1]) == [4, 5, 5]  # "b" has only 4
    other = _ucr.few_labels(y, 5, np.random.default_rng([0, 5, 1]))
    assert not np.array_equal(idx, other)


def test_missing_optional_dependency_names_the_extra():
    with pytest.raises(SystemExit, match=r"pip install 'atlas-water\[ucr\]'"):
        _ucr.require("no_such_module_for_atlas_tests.datasets")


def test_bench_module_imports_without_the_optional_packages():
    """A runtime-only install imports every module: sktime and tslearn load only when run."""
    code = (
        "import sys, service.bench.codebook_ucr, service.bench._ucr; "
        "print(sorted({'sktime', 'tslearn', 'numba'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
