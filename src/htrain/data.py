"""Data sets as in-memory tensors: Gaussian mixtures D1 / D2, MNIST and CIFAR10.

Everything is held as tensors on the training device and batched by index (no DataLoader):
the data sets are small enough, and this keeps an epoch's cost down to the model's own.
"""

from __future__ import annotations

import pickle
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

MIXTURE_MEAN_OFFSET = -0.2  # m in D1 (docs/paper.md section 3)
MNIST_STATS = ((0.1307,), (0.3081,))  # the usual per-channel mean and std of MNIST
MNIST_KINDS = ("images-idx3-ubyte", "labels-idx1-ubyte")
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@dataclass(frozen=True)
class Dataset:
    """Train / test tensors (x float32, y int64) and what describes the task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    snr: float | None = None
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor] | None]:
        """{"train", "test", "val"} -> (x, y); "val" is None without a validation set."""
        val = None if self.x_val is None else (self.x_val, self.y_val)
        return {
            "train": (self.x_train, self.y_train),
            "test": (self.x_test, self.y_test),
            "val": val,
        }


# ---------------------------------------------------------------- Gaussian mixtures


def mixture_means(
    kind: str,
    K: int,
    p: int,
    rng: np.random.Generator,
    delta: float | None = None,
    t: float | None = None,
) -> np.ndarray:
    """Class means (K x p) of the paper's Gaussian ANOVA data (docs/paper.md section 3).

    D1(delta): a random half I_k of the p coordinates per class; mu_k = m on I_k and
    m + delta elsewhere, m = -0.2.  D2(t): mu_k = t v_k with (v_k)_j = 1{j = k} - 1/K for
    j <= K and 0 beyond (a simplex of K points).
    """
    if kind == "d1":
        means = np.full((K, p), MIXTURE_MEAN_OFFSET + delta)
        for k in range(K):
            means[k, rng.choice(p, size=p // 2, replace=False)] = MIXTURE_MEAN_OFFSET
        return means
    if kind == "d2":
        means = np.zeros((K, p))
        means[:, :K] = np.eye(K) - 1.0 / K
        return t * means
    raise ValueError(f"unknown mixture {kind!r}; choose d1 or d2")


def mixture_snr(means: np.ndarray, sigma: float = 1.0) -> float:
    """SNR = average over class pairs of ||mu_k - mu_k'|| / sigma (docs/paper.md section 3)."""
    return float(np.mean([np.linalg.norm(a - b) for a, b in combinations(means, 2)]) / sigma)


def parameter_for_snr(kind: str, snr: float, K: int, p: int, rng_seed: int) -> float:
    """delta (D1) or t (D2) whose means have this SNR: SNR is linear in either, so one
    evaluation at 1 gives the slope (for D1 with the same random halves as the run)."""
    # the offset m cancels in differences, so the means at delta = t = 1 give the slope
    unit = mixture_means(kind, K, p, np.random.default_rng(rng_seed), delta=1.0, t=1.0)
    return snr / mixture_snr(unit)


def gaussian_mixture(
    kind: str,
    K: int,
    p: int,
    n_per_class: int,
    n_test_per_class: int,
    seed: int,
    delta: float | None = None,
    t: float | None = None,
    sigma: float = 1.0,
) -> Dataset:
    """h = mu_k + N(0, sigma^2 I_p), n_per_class training and n_test_per_class test points
    per class, drawn around the same means; everything from one seed."""
    rng = np.random.default_rng(seed)
    means = mixture_means(kind, K, p, rng, delta=delta, t=t)

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = np.repeat(np.arange(K), per_class)
        points = means[labels] + sigma * rng.standard_normal((labels.size, p))
        return torch.from_numpy(points.astype(np.float32)), torch.from_numpy(labels)

    x_train, y_train = draw(n_per_class)
    x_test, y_test = draw(n_test_per_class)
    return Dataset(x_train, y_train, x_test, y_test, K, snr=mixture_snr(means, sigma))


# ---------------------------------------------------------------- MNIST and CIFAR10


def _normalise(images: torch.Tensor, stats) -> torch.Tensor:
    mean = torch.tensor(stats[0]).view(1, -1, 1, 1)
    std = torch.tensor(stats[1]).view(1, -1, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop (CIFAR 32 -> 28) or zero-pad (MNIST 28 -> 32) square images to ``size``."""
    current = images.shape[-1]
    if current > size:
        start = (current - size) // 2
        return images[..., start : start + size, start : start + size]
    if current < size:
        pad = (size - current) // 2
        return torch.nn.functional.pad(images, (pad, size - current - pad) * 2)
    return images


@contextmanager
def network_timeout(seconds: float):
    """Every socket opened inside the block gives up after ``seconds`` without an answer.

    torchvision's downloads call urllib without a timeout, so a network that accepts
    connections and never answers would hang them forever; the default socket timeout is
    the one setting they obey."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def load_mnist(data_dir: str | Path, download: bool, size: int, timeout_s: float = 60.0) -> Dataset:
    """MNIST through torchvision's reader (``<data_dir>/MNIST/raw/*-ubyte``).

    Pixels scaled to [0, 1] and standardised with the usual mean 0.1307 and std 0.3081;
    28 x 28, or zero-padded to 32 x 32 for VGG11.  A download that gets no answer for
    ``timeout_s`` seconds (per connection) fails with a one-line error.
    """
    from torchvision.datasets import MNIST

    root = Path(data_dir)
    raw = root / "MNIST" / "raw"
    files = ", ".join(f"{split}-{kind}" for split in ("train", "t10k") for kind in MNIST_KINDS)
    try:
        with network_timeout(timeout_s):
            train = MNIST(root, train=True, download=download)
            test = MNIST(root, train=False, download=download)
    except (RuntimeError, OSError, ValueError, IndexError) as error:
        names = [f"{split}-{kind}" for split in ("train", "t10k") for kind in MNIST_KINDS]
        if all((raw / name).is_file() for name in names):
            raise ValueError(
                f"the MNIST files under {raw} are damaged ({_first_line(error)}); delete them "
                "and download again"
            ) from None
        if not download:
            raise FileNotFoundError(
                f"MNIST not found under {raw} (the four files {files}); set data.download=true "
                "on a machine with internet, or copy them there"
            ) from None
        raise FileNotFoundError(
            f"MNIST could not be downloaded from {MNIST.mirrors[0]} within "
            f"data.download_timeout_s={timeout_s:g} s per attempt ({_first_line(error)}); "
            f"download the four files ({files}) elsewhere and put them, gunzipped, in {raw}"
        ) from None

    def prepare(split) -> torch.Tensor:
        return _fit_size(_normalise(split.data.unsqueeze(1), MNIST_STATS), size)

    return Dataset(prepare(train), train.targets.long(), prepare(test), test.targets.long(), 10)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file is data, and a pickle
    that names any other callable (os.system, a __reduce__ payload) is refused before it
    runs.  The allowed names are what numpy arrays and Python 2 strings unpickle through."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not array data")
        return super().find_class(module, name)


def read_cifar10_batches(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The standard CIFAR-10 python batches: pickled dicts with b"data" (N x 3072 uint8,
    channel-major) and b"labels".  Read here rather than by torchvision, whose reader
    insists on the official checksums and so cannot be exercised on small test files; read
    with ``_ArrayUnpickler``, so a tampered file in a shared data folder runs no code."""

    def read(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as handle:
            try:
                batch = _ArrayUnpickler(handle, encoding="bytes").load()
            except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as error:
                raise ValueError(
                    f"{folder / name} is not a CIFAR-10 batch ({_first_line(error)}); delete "
                    f"{folder} and download the data again"
                ) from None
        if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
            raise ValueError(f"{folder / name} is not a CIFAR-10 batch (no data and labels)")
        return batch[b"data"].reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"])

    train = [read(name) for name in CIFAR10_FILES[:-1]]
    x_test, y_test = read(CIFAR10_FILES[-1])
    return (
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        x_test,
        y_test,
    )


def load_cifar10(
    data_dir: str | Path, download: bool, size: int, timeout_s: float = 60.0
) -> Dataset:
    """CIFAR-10 from ``<data_dir>/cifar-10-batches-py`` (downloaded by torchvision, with its
    checksum check, when missing and ``download`` is true).

    Pixels scaled to [0, 1] and standardised per channel with the usual CIFAR-10 means and
    stds; centre-cropped from 32 x 32 to 28 x 28 for LeNet and MiniAlexNet (no augmentation:
    the paper mentions none).
    """
    root = Path(data_dir)
    folder = root / "cifar-10-batches-py"
    if not all((folder / name).exists() for name in CIFAR10_FILES):
        if not download:
            raise FileNotFoundError(
                f"CIFAR-10 not found: put the python batches ({', '.join(CIFAR10_FILES)}) in "
                f"{folder}, or set data.download=true on a machine with internet"
            )
        from torchvision.datasets import CIFAR10

        try:
            with network_timeout(timeout_s):
                CIFAR10(root, train=True, download=True)
        except Exception as error:  # no network, no answer, proxy refusal, bad archive...
            raise FileNotFoundError(
                f"CIFAR-10 could not be downloaded from {CIFAR10.url} within "
                f"data.download_timeout_s={timeout_s:g} s ({_first_line(error)}); download "
                f"it elsewhere and unpack its python batches into {folder}"
            ) from None
    x_train, y_train, x_test, y_test = read_cifar10_batches(folder)

    def prepare(images: np.ndarray) -> torch.Tensor:
        return _fit_size(_normalise(torch.from_numpy(images), CIFAR10_STATS), size)

    return Dataset(
        prepare(x_train),
        torch.from_numpy(y_train).long(),
        prepare(x_test),
        torch.from_numpy(y_test).long(),
        10,
    )


# ---------------------------------------------------------------- splits and batches


MNIST1D_LENGTH = 40  # the package's default final_seq_length


def mnist1d(n_train: int, n_test: int, seed: int) -> Dataset:
    """MNIST-1D (Greydanus & Steinbach, 2020-2024; PyPI ``mnist1d``): ten 1-D digit templates
    of length 12, padded, scaled, translated, sheared and corrupted with correlated and iid
    noise into 40-sample signals.  Generated offline from the package's templates with its
    default transform arguments; the package's own split (train_split) is replaced by ours,
    so that a run can ask for ``n_train`` + ``n_test`` samples, a multiple of 10 each.

    The package seeds numpy's global generator (``mnist1d.utils.set_seed``); it is saved
    and restored around the call so that the rest of the run is not affected."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise FileNotFoundError(
            'MNIST-1D needs the mnist1d package: pip install -e ".[experiments]"'
        ) from None
    args = get_dataset_args()
    total = n_train + n_test
    args.num_samples = total
    args.train_split = n_train / total
    args.seed = int(seed)
    saved = np.random.get_state()  # noqa: NPY002 (the package seeds the legacy global state)
    try:
        generated = make_dataset(args)
    finally:
        np.random.set_state(saved)  # noqa: NPY002

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))

    x_train, y_train = tensors(generated["x"], generated["y"])
    x_test, y_test = tensors(generated["x_test"], generated["y_test"])
    return Dataset(x_train, y_train, x_test, y_test, 10)


def with_label_noise(data: Dataset, rate: float, seed: int) -> Dataset:
    """Symmetric label noise on the training set: each training label, with probability
    ``rate``, is replaced by one of the other K - 1 classes drawn uniformly (Natarajan et al.
    2013, the usual "symmetric" noise of the label-noise literature).  Test labels stay
    clean.  Applied before ``hold_out``, so a validation twin's held-out part is as noisy
    as what a user would hold out.  A generator of its own (seed + 1,000,003) keeps the
    clean part of the data identical to the noise-free run's."""
    if rate == 0:
        return data
    generator = torch.Generator().manual_seed(int(seed) + 1_000_003)
    flip = torch.rand(len(data.y_train), generator=generator) < rate
    shift = torch.randint(1, data.num_classes, (len(data.y_train),), generator=generator)
    noisy = torch.where(flip, (data.y_train + shift) % data.num_classes, data.y_train)
    return Dataset(
        data.x_train,
        noisy,
        data.x_test,
        data.y_test,
        data.num_classes,
        data.snr,
        data.x_val,
        data.y_val,
    )


def hold_out(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Move a random ``fraction`` of the training set to (x_val, y_val)."""
    if fraction == 0:
        return data
    if not 0 < fraction < 1:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {fraction}")
    order = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(seed))
    n_val = round(fraction * len(order))
    if n_val == 0 or n_val == len(order):
        left = "no validation sample" if n_val == 0 else "no training sample"
        raise ValueError(
            f"data.val_fraction={fraction} of {len(order)} training samples leaves {left}; "
            "choose a fraction or a data size that leaves both"
        )
    val, train = order[:n_val], order[n_val:]
    return Dataset(
        data.x_train[train],
        data.y_train[train],
        data.x_test,
        data.y_test,
        data.num_classes,
        data.snr,
        data.x_train[val],
        data.y_train[val],
    )


def batches(size: int, batch_size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    """Index tensors of one shuffled epoch (the last batch may be smaller)."""
    order = torch.randperm(size, generator=generator).to(device)
    return list(order.split(batch_size))


def class_subset(
    x: torch.Tensor, y: torch.Tensor, per_class: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` examples of each class in a seeded shuffle (all if None)."""
    if per_class is None:
        return x, y
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    keep = torch.cat([order[y[order] == label][:per_class] for label in torch.unique(y)])
    keep = keep.sort().values
    return x[keep], y[keep]
