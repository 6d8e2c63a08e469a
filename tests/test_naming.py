"""Run names stay stable across releases: the names of committed runs, pinned."""

import pytest
from helpers import ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from htrain.naming import hashed_values, run_name

GROUPS = ("data", "model", "optim", "train", "spectra", "early_stop", "seed")


def name_of(*overrides: str) -> str:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return run_name({key: OmegaConf.to_container(cfg, resolve=True)[key] for key in GROUPS})


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        # runs committed in 567371a (results/paper_scale_check, nn1_d1, nn2_d2), made before
        # spectra.n_classes existed
        (("profile=paper", "data.delta=0.9", "train.epochs=4"), "gmm_d1-nn1-2d1b6c190b"),
        (("data.delta=0.3", "data.K=8", "seed=1"), "gmm_d1-nn1-0076d9b73a"),
        (("experiment=gmm_nn2_d2", "data.t=1.2", "data.K=8", "seed=0"), "gmm_d2-nn2-02955d699c"),
    ],
)
def test_runs_made_before_a_key_existed_keep_their_names(overrides, name):
    assert name_of(*overrides, "spectra.n_classes=null") == name


def test_the_paper_tables_runs_keep_their_names():
    # the paper-scale runs in progress (issue: paper tables) were started under these names
    assert (
        name_of("experiment=paper_tables/nn1_d1_delta0.15", "profile=paper")
        == "gmm_d1-nn1-d77e38bc6c"
    )


def test_keys_that_do_not_change_the_numbers_are_not_hashed():
    base = name_of("profile=smoke")
    for override in (
        "train.progress=false",
        "train.threads=1",
        "train.device=cpu",
        "train.restart=true",
        "train.wait_for_lock=true",
        "train.esd_figure=false",
    ):
        assert name_of("profile=smoke", override) == base, override
    assert name_of("profile=smoke", "seed=1") != base
    assert name_of("profile=smoke", "spectra.n_classes=3") != base


def test_removed_keys_are_hashed_at_the_value_they_had():
    values = hashed_values(
        {key: {} for key in GROUPS if key != "seed"} | {"seed": 0, "data": {"name": "gmm"}}
    )
    assert values["spectra"]["conv"] == "flatten"
