"""Run names: ``<data>-<model>-<hash>``, a stable hash of the config values that define a run.

The same command finds (and resumes) the same folder, and two sweeps never collide
(DomainBed's convention).  A name must survive new releases, or an hours-long run would start
over after an upgrade, so the hashed values are a fixed schema:

* keys that do not change a run's numbers (progress bars, device, threads, what to do with a
  locked or broken folder) are left out;
* a key added after runs existed is left out while it has the value earlier runs behaved as
  (``ADDED_KEYS``), so only runs that use the new option get new names;
* a key removed from the configs is hashed with the value it always had (``REMOVED_KEYS``).

``tests/test_naming.py`` pins the names of committed runs.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping

HASHED_GROUPS = ("data", "model", "optim", "train", "spectra", "early_stop", "seed")
NOT_IN_RUN_NAME = (
    "train.progress",
    "train.device",
    "train.threads",
    "train.restart",
    "train.wait_for_lock",
    "data.download_timeout_s",
    "train.grad_stats",  # measured beside the step (htrain.gradstats), changes no number
    "train.esd_figure",  # a picture of numbers already recorded
)
# key -> the value every run made before the key existed behaved as
ADDED_KEYS: dict[str, object] = {
    "spectra.n_classes": None,  # the spike rule did not know K
    "optim.name": "sgd",  # every run before Adam was plain or momentum SGD
    "data.label_noise": 0.0,  # no run before MNIST-1D had noisy labels
}
# key -> the value it had in every run made while it existed
REMOVED_KEYS: dict[str, object] = {
    # monitored layers are Linear only (htrain.models.check_layers), so this never mattered
    "spectra.conv": "flatten",
}


def _pop(tree: dict, dotted: str) -> object:
    group, _, key = dotted.partition(".")
    return tree.get(group, {}).pop(key, None) if isinstance(tree.get(group), dict) else None


def hashed_values(values: Mapping) -> dict:
    """The schema of values hashed into a run name, from the resolved config groups."""
    tree = copy.deepcopy({key: values[key] for key in HASHED_GROUPS})
    for dotted in NOT_IN_RUN_NAME:
        _pop(tree, dotted)
    for dotted, legacy in ADDED_KEYS.items():
        group, _, key = dotted.partition(".")
        if tree.get(group, {}).get(key, legacy) == legacy:
            _pop(tree, dotted)
    for dotted, legacy in REMOVED_KEYS.items():
        group, _, key = dotted.partition(".")
        tree.setdefault(group, {})[key] = legacy
    return tree


def run_name(values: Mapping) -> str:
    """``<data>-<model>-<first 10 hex digits of sha1(hashed values as sorted JSON)>``."""
    digest = hashlib.sha1(json.dumps(hashed_values(values), sort_keys=True).encode()).hexdigest()
    data = values["data"]
    prefix = f"{data['name']}_{data['kind']}" if data["name"] == "gmm" else data["name"]
    return f"{prefix}-{values['model']['name']}-{digest[:10]}"


def sweep_folder(name: str | None, chosen_sweep: str | None) -> str:
    """The folder of a multirun under sweeps/: sweep_name when set, else the chosen sweep's
    name, else "manual" (a multirun without sweep=)."""
    for candidate in (name, chosen_sweep):
        if candidate not in (None, "None", "null", ""):
            return str(candidate)
    return "manual"


def register_resolvers() -> None:
    """The OmegaConf resolvers the configs use: ${run_name:} and ${sweep_folder:...}."""
    from omegaconf import OmegaConf

    def resolve_run_name(*, _root_) -> str:
        return run_name(
            {
                key: OmegaConf.to_container(_root_[key], resolve=True)
                if OmegaConf.is_config(_root_[key])
                else _root_[key]
                for key in HASHED_GROUPS
            }
        )

    OmegaConf.register_new_resolver("run_name", resolve_run_name, replace=True)
    OmegaConf.register_new_resolver("sweep_folder", sweep_folder, replace=True)
