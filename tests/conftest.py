"""Shared fixtures; tiny MNIST and CIFAR-10 files in the data sets' real on-disk formats."""

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest


def write_mnist(root: Path, per_class: int = 5, test_per_class: int = 3) -> None:
    """IDX files as distributed (gunzipped) under <root>/MNIST/raw."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), count)
        images = rng.integers(0, 256, (labels.size, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, labels.size, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, labels.size) + labels.tobytes()
        )


def write_cifar10(root: Path, per_class: int = 5, test_per_class: int = 3) -> None:
    """The python version's pickled batches under <root>/cifar-10-batches-py."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)

    def batch(count: int, name: str) -> None:
        labels = np.repeat(np.arange(10), count)
        payload = {
            b"batch_label": name.encode(),
            b"labels": labels.tolist(),
            b"data": rng.integers(0, 256, (labels.size, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(labels.size)],
        }
        with open(folder / name, "wb") as handle:
            pickle.dump(payload, handle)

    for i in range(1, 6):
        batch(per_class, f"data_batch_{i}")
    batch(test_per_class, "test_batch")
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [str(i).encode() for i in range(10)]}, handle)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20231)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder holding tiny MNIST and CIFAR-10 files."""
    root = tmp_path / "data"
    write_mnist(root)
    write_cifar10(root)
    return root


def pytest_configure(config) -> None:
    # the configs' ${run_name:} and ${sweep_folder:} resolvers, as scripts/run.py registers them;
    # without the runner's dependencies (omegaconf) the library's own tests still run
    try:
        from htrain.naming import register_resolvers

        register_resolvers()
    except ImportError:
        pass
    # registered here as well as by pytest-xdist, so that `-p no:xdist` runs keep
    # --strict-markers happy
    config.addinivalue_line(
        "markers", "xdist_group(name): tests sharing a module fixture run on one worker"
    )


def pytest_collection_modifyitems(config, items) -> None:
    # slow tests first, so that `make test`'s workers end together on the many short ones
    # (longest first) rather than on a long test that started last
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
