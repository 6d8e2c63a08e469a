"""The networks a run can name (``model.name``), listed once: how each is built, the layers
whose spectra are monitored by default, and the input it expects.

The default monitored layers come from here wherever the runner needs them (training,
collect), so a new network is one entry here, its builder (``htrain.models``) and a config
under configs/model/.  Torch-free (builders are imported when called) so that collecting
runs does not load torch.  The paper's table (``htrain.paper.PAPER_LAYERS``) only labels
the paper's runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkEntry:
    """One network: ``build(in_shape, num_classes)`` -> torch module, the Linear layers
    monitored when spectra.layers is null, the input it takes (for error messages), and
    whether the stacked trainer can train many of it at once (an MLP of fc1..fcL)."""

    name: str
    build: Callable
    monitored: tuple[str, ...]
    expected_input: str = "any shape"
    stackable: bool = False


def _builder(name: str) -> Callable:
    def build(in_shape, num_classes):
        from htrain import models

        return getattr(models, name)(in_shape, num_classes)

    return build


NETWORKS: dict[str, NetworkEntry] = {}


def register_network(entry: NetworkEntry) -> NetworkEntry:
    NETWORKS[entry.name] = entry
    return entry


# the layers the paper monitors (docs/paper.md section 3) are each network's default
for _entry in (
    NetworkEntry("nn1", _builder("nn1"), ("fc2", "fc3"), stackable=True),
    NetworkEntry("nn2", _builder("nn2"), ("fc1", "fc2"), stackable=True),
    NetworkEntry("lenet", _builder("lenet"), ("fc1", "fc2"), "C x 28 x 28"),
    NetworkEntry("minialexnet", _builder("minialexnet"), ("fc1", "fc2"), "C x 28 x 28"),
    NetworkEntry("vgg11", _builder("vgg11"), ("fc1",), "C x 32 x 32"),
):
    register_network(_entry)


def network_entry(name: str) -> NetworkEntry:
    """The registered network ``name``; ValueError in one line naming the choices."""
    if name not in NETWORKS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(NETWORKS)}")
    return NETWORKS[name]
