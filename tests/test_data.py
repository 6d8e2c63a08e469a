import numpy as np
import pytest
import torch

from htrain import data as datasets


def test_d1_means_follow_the_paper(rng):
    means = datasets.mixture_means("d1", 5, 100, rng, delta=0.3)
    assert means.shape == (5, 100)
    for row in means:  # m = -0.2 on a half, m + delta elsewhere
        assert np.sum(np.isclose(row, -0.2)) == 50 and np.sum(np.isclose(row, 0.1)) == 50


def test_d2_means_are_a_simplex_with_snr_sqrt2_t(rng):
    means = datasets.mixture_means("d2", 4, 10, rng, t=2.0)
    np.testing.assert_allclose(means[:, :4], 2.0 * (np.eye(4) - 0.25))
    assert np.all(means[:, 4:] == 0)
    assert datasets.mixture_snr(means) == pytest.approx(np.sqrt(2) * 2.0)


def test_gaussian_mixture_is_seeded_and_balanced():
    first = datasets.gaussian_mixture("d2", 3, 20, 40, 10, seed=5, t=1.0)
    second = datasets.gaussian_mixture("d2", 3, 20, 40, 10, seed=5, t=1.0)
    assert torch.equal(first.x_train, second.x_train)
    assert first.x_train.dtype == torch.float32 and first.x_train.shape == (120, 20)
    assert torch.bincount(first.y_test).tolist() == [10, 10, 10]
    # the noise has unit variance around the class means
    centred = first.x_train[:, 3:]
    assert centred.var().item() == pytest.approx(1.0, rel=0.1)


def test_mnist_is_read_through_torchvision_from_raw_files(data_dir):
    data = datasets.load_mnist(data_dir, download=False, size=28)
    assert data.x_train.shape == (50, 1, 28, 28) and data.x_test.shape == (30, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [5] * 10
    raw = np.frombuffer(
        (data_dir / "MNIST/raw/train-images-idx3-ubyte").read_bytes()[16:], dtype=np.uint8
    ).reshape(50, 28, 28)
    expected = (raw[0] / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(data.x_train[0, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    padded = datasets.load_mnist(data_dir, download=False, size=32)
    assert padded.x_train.shape == (50, 1, 32, 32)
    assert torch.equal(padded.x_train[:, :, 2:30, 2:30], data.x_train)


def test_cifar10_python_batches_are_read_and_centre_cropped(data_dir):
    data = datasets.load_cifar10(data_dir, download=False, size=28)
    assert data.x_train.shape == (250, 3, 28, 28) and data.x_test.shape == (30, 3, 28, 28)
    full = datasets.load_cifar10(data_dir, download=False, size=32)
    assert torch.equal(full.x_train[:, :, 2:30, 2:30], data.x_train)


def test_missing_files_without_download_say_where_they_go(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        datasets.load_cifar10(tmp_path, download=False, size=28)
    with pytest.raises(FileNotFoundError, match="MNIST"):
        datasets.load_mnist(tmp_path, download=False, size=28)


def test_class_subset_and_hold_out():
    x = torch.arange(100.0).unsqueeze(1)
    y = torch.arange(100) % 4
    _xs, ys = datasets.class_subset(x, y, 5, seed=0)
    assert torch.bincount(ys).tolist() == [5, 5, 5, 5]
    data = datasets.Dataset(x, y, x[:8], y[:8], 4)
    split = datasets.hold_out(data, 0.25, seed=0)
    assert len(split.y_train) == 75 and len(split.y_val) == 25
    assert not set(split.x_train[:, 0].tolist()) & set(split.x_val[:, 0].tolist())
    with pytest.raises(ValueError, match="val_fraction"):
        datasets.hold_out(data, 1.5, seed=0)
