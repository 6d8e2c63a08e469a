"""The data sets a run can name (``data.name``), listed once: how each is loaded, its number
of classes K and its difficulty parameter.

K comes from here wherever the runner needs it (the spike rule, collect, figures), so a new
data set cannot be analysed with a guessed K.  Adding a data set is one entry here, its
loader and a config under configs/data/.  Loaders take the composed config (``cfg.data``,
``cfg.seed``, ``cfg.paths.data_dir``) and return ``htrain.data.Dataset``; values are checked by the
caller (``htrain.experiment.load_data``), which adds label noise and the validation split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DataSetEntry:
    """One data set: its loader, K from its config, and the config key that sets how hard
    it is (None when it has none)."""

    name: str
    load: Callable  # composed config -> htrain.data.Dataset
    n_classes: Callable[[Mapping], int]
    difficulty: Callable[[Mapping], str | None]


def _mixture(cfg):
    from htrain import data as datasets
    from htrain.experiment import mixture_spec

    kind, K, p, parameter = mixture_spec(cfg)
    spec = cfg.data
    return datasets.gaussian_mixture(
        kind, K, p, int(spec.n_per_class), int(spec.n_test_per_class), int(cfg.seed), **parameter
    )


def _torchvision(name: str):
    def load(cfg):
        from htrain import data as datasets

        spec, seed, data_dir = cfg.data, int(cfg.seed), cfg.paths.data_dir
        loader = datasets.load_mnist if name == "mnist" else datasets.load_cifar10
        timeout = float(spec.get("download_timeout_s", 60))
        full = loader(data_dir, bool(spec["download"]), int(spec["size"]), timeout)
        x_train, y_train = datasets.class_subset(
            full.x_train, full.y_train, spec["n_per_class"], seed
        )
        x_test, y_test = datasets.class_subset(
            full.x_test, full.y_test, spec["n_test_per_class"], seed
        )
        return datasets.Dataset(x_train, y_train, x_test, y_test, full.num_classes)

    return load


def _mnist1d(cfg):
    from htrain import data as datasets

    spec = cfg.data
    return datasets.mnist1d(10 * int(spec.n_per_class), 10 * int(spec.n_test_per_class), cfg.seed)


def _mixture_difficulty(spec: Mapping) -> str | None:
    return {"d1": "data.delta", "d2": "data.t"}.get(spec.get("kind"))


DATASETS: dict[str, DataSetEntry] = {
    entry.name: entry
    for entry in (
        DataSetEntry("gmm", _mixture, lambda spec: int(spec["K"]), _mixture_difficulty),
        DataSetEntry("mnist", _torchvision("mnist"), lambda spec: 10, lambda spec: None),
        DataSetEntry("cifar10", _torchvision("cifar10"), lambda spec: 10, lambda spec: None),
        DataSetEntry("mnist1d", _mnist1d, lambda spec: 10, lambda spec: "data.label_noise"),
    )
}


def dataset_entry(name: str) -> DataSetEntry:
    """The registered data set ``name``; ValueError in one line naming the choices."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose {', '.join(DATASETS)}")
    return DATASETS[name]


def n_classes_of(spec: Mapping) -> int:
    """K of the data set a ``data`` config describes."""
    return dataset_entry(spec["name"]).n_classes(spec)


def n_classes_of_row(row: Mapping) -> int | None:
    """K of a collected run from its ``data.*`` columns (runs.csv), None when its data set is
    not registered here."""
    spec = {
        key.removeprefix("data."): value for key, value in row.items() if key.startswith("data.")
    }
    if spec.get("name") not in DATASETS:
        return None
    return int(n_classes_of(spec))
