"""The data-set registry, MNIST-1D, label noise, and the recipes of the stopping benchmark."""

import pytest
import torch
from helpers import ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from htrain import data as datasets
from htrain import datasets as registry
from htrain.experiment import load_data, num_classes, train_config
from htrain.naming import run_name

GROUPS = ("data", "model", "optim", "train", "spectra", "early_stop", "seed")


def composed(*overrides):
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def name_of(cfg):
    return run_name({key: OmegaConf.to_container(cfg, resolve=True)[key] for key in GROUPS})


def test_mnist1d_is_made_offline_with_the_asked_sizes_and_the_global_rng_untouched():
    import numpy as np

    # the package seeds numpy's legacy global generator: the state must come back unchanged
    state = np.random.get_state()  # noqa: NPY002
    data = datasets.mnist1d(200, 100, seed=3)
    after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(a, b) for a, b in zip(state[1:3], after[1:3], strict=True))
    assert data.x_train.shape == (200, 40) and data.x_test.shape == (100, 40)
    assert data.num_classes == 10 and set(data.y_train.tolist()) <= set(range(10))
    again = datasets.mnist1d(200, 100, seed=3)
    assert torch.equal(data.x_train, again.x_train)
    assert not torch.equal(data.x_train, datasets.mnist1d(200, 100, seed=4).x_train)


def test_symmetric_label_noise_flips_the_asked_share_to_other_classes_only():
    labels = torch.arange(10).repeat(2000)
    data = datasets.Dataset(
        torch.zeros(len(labels), 1), labels, torch.zeros(5, 1), torch.arange(5), 10
    )
    noisy = datasets.with_label_noise(data, 0.4, seed=0)
    flipped = noisy.y_train != labels
    assert flipped.float().mean().item() == pytest.approx(0.4, abs=0.02)
    # the new labels are spread over the other nine classes
    shift = (noisy.y_train[flipped] - labels[flipped]) % 10
    assert set(shift.tolist()) == set(range(1, 10))
    assert torch.equal(noisy.y_test, data.y_test)  # test labels stay clean
    assert datasets.with_label_noise(data, 0.0, seed=0) is data


def test_the_mnist1d_experiment_with_noise_and_a_twin_loads(tmp_path):
    cfg = composed(
        "experiment=mnist1d_nn1", "profile=smoke", "data.label_noise=0.2", "data.val_fraction=0.1"
    )
    data = load_data(cfg)
    assert num_classes(cfg) == 10 and data.x_val is not None
    assert len(data.y_train) + len(data.y_val) == 160
    assert train_config(cfg).n_classes == 10


def test_a_new_data_set_is_one_registry_entry_and_k_comes_from_it(monkeypatch):
    # a toy 100-class data set: registered once, its K reaches the spike rule
    def load(cfg):
        x = torch.randn(400, 12)
        return datasets.Dataset(x, torch.arange(400) % 100, x[:100], torch.arange(100), 100)

    entry = registry.DataSetEntry("toy100", load, lambda spec: 100, lambda spec: None)
    monkeypatch.setitem(registry.DATASETS, "toy100", entry)
    cfg = composed("profile=smoke", "data.name=toy100")
    assert num_classes(cfg) == 100 and train_config(cfg).n_classes == 100
    assert load_data(cfg).num_classes == 100
    from htrain.collect import analysis_of

    assert analysis_of(OmegaConf.to_container(cfg, resolve=True)).n_classes == 100
    with pytest.raises(ValueError, match="unknown data set 'nope'; choose gmm"):
        registry.dataset_entry("nope")


def test_new_keys_at_their_old_values_keep_run_names_and_new_values_change_them():
    base = composed("profile=smoke")
    assert name_of(base) == name_of(composed("profile=smoke", "train.grad_stats=0"))
    assert name_of(composed("profile=smoke", "recipe=adam")) != name_of(base)
    assert name_of(composed("profile=smoke", "recipe=momentum")) != name_of(base)
    noisy = composed("experiment=mnist1d_nn1", "profile=smoke", "data.label_noise=0.2")
    clean = composed("experiment=mnist1d_nn1", "profile=smoke")
    assert name_of(noisy) != name_of(clean) and name_of(clean).startswith("mnist1d-nn1-")


def test_recipes_set_the_optimiser():
    from htrain.train import new_optimizer

    adam = train_config(composed("profile=smoke", "recipe=adam"))
    assert adam.optimizer == "adam" and adam.lr == 1e-3
    assert isinstance(new_optimizer(adam, torch.nn.Linear(2, 2).parameters()), torch.optim.Adam)
    assert train_config(composed("profile=smoke", "recipe=momentum")).momentum == 0.9
    assert train_config(composed("profile=smoke", "recipe=batch256")).batch_size == 256
    with pytest.raises(ValueError, match=r"optim\.name must be one of sgd, adam"):
        train_config(composed("profile=smoke", "optim.name=lbfgs"))
    with pytest.raises(ValueError, match=r"data\.label_noise must be at most 0\.95"):
        load_data(composed("experiment=mnist1d_nn1", "profile=smoke", "data.label_noise=1.5"))
