"""The bulk-growth stopping rule: stop once the K class spikes are out and the bulk of the
first monitored layer starts to grow.

Why (docs/method.md, "A stop that works"; the evidence in docs/stopping.md).  A K-class
signal is a perturbation of rank at most K of a weight matrix W: when the network has learnt
the class directions, K - 1 or K eigenvalues of W W^T / N leave the Marchenko-Pastur bulk
(``heavytail.fit.find_class_spikes``).  What W gains after that is not explained by the class
means: weight that fits individual training samples.  Added to W as a roughly unstructured
component R of entry variance r, it widens the bulk: for independent W_0 and R the MP scales
add (free additive convolution of two MP laws of the same shape is, to first order in
r / sigma2, MP with scale sigma2 + r), so the bulk's fitted scale sigma2 grows by r.  At the
paper's scale the best test epoch lies between the two events (the spikes leave a median of 3
epochs before it, the bulk grows 1.5 after), and on easy problems the bulk stays flat.

The rule, with s(t) the body fit's scale of the first monitored layer (``fit_body``: the
quartile fit, which a few spikes cannot drag) and t_spk the first epoch at which every
monitored layer has at least K - 1 class spikes:

    stop at the first epoch t > t_spk with  s(t) > s(t_spk) (1 + z / n),

n the first layer's number of eigenvalues.  The unit 1 / n is the resolution of a spectrum
of n eigenvalues: bulk eigenvalues are rigid to O(1 / n) of the bulk's width (Erdos, Yau &
Yin 2012; for Wishart matrices Pillai & Yin 2014), so the quartile fit of an MP sample has a
relative standard deviation a / n with a = O(1) (about 2.2 at c = 1/2, measured in
tests/test_growth.py), and growth below z / n with z = O(1) cannot be told apart from the
sampling noise of a spectrum of that size.  ``z`` is chosen on the stopping benchmark's dev
part (docs/stopping.md); it is the rule's only parameter.

The weights it recommends are those of the epoch before the stop: the last epoch at which
the bulk had not yet outgrown its size when the spikes came out (``recommended_epoch``).

The rule needs K (without it the class spikes cannot be told from a heavy tail).

When not to act: the small-data regime, where the network memorises its training set before
the spikes come out and while the test accuracy still rises, so that the bulk grows for a
reason that does not mark the best epoch.  The rule watches the size of the training set
against the fan-in N of the monitored layers: by Cover's function-counting theorem (Cover
1965) more than half of all labellings of n points in general position in R^N are linearly
separable when n < 2N, so a layer with n_train < 2N can fit its training set, labels and
noise alike, by itself (``memorises_freely``).  There the rule stands down and training
runs to the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# the rule's growth threshold in units of 1 / n, chosen on the stopping benchmark's dev part
# by its protocol (docs/stopping.md; htrain.stopping.choose_z): z = 1 had the smallest mean
# loss on the 12 dev paper-scale runs (0.20 points, 68% saved) among the z that lose at most
# 0.2 points more than training to the end on the 54 dev quick runs; frozen before the
# held-out part was evaluated with it
DEFAULT_Z = 1.0


def growth_threshold(n: int, z: float = DEFAULT_Z) -> float:
    """The relative growth z / n of the body scale at which the rule stops (formula above)."""
    if n < 1:
        raise ValueError(f"n must be a positive number of eigenvalues, got {n!r}")
    if not (z >= 0 and math.isfinite(z)):
        raise ValueError(f"z must be a non-negative number, got {z!r}")
    return z / n


def memorises_freely(n_train: int | None, fan_ins) -> bool:
    """Cover's bound (module docstring): whether some monitored layer has n_train < 2 N.
    Unknown n_train (None): False, the rule acts."""
    if n_train is None:
        return False
    return any(n_train < 2 * int(fan_in) for fan_in in fan_ins)


def spikes_out(spike_counts: Mapping[str, int | None], n_classes: int) -> bool:
    """Whether every layer has at least K - 1 class spikes (a None count: not measured)."""
    counts = list(spike_counts.values())
    return bool(counts) and all(c is not None and c >= n_classes - 1 for c in counts)


class BulkGrowthStopping:
    """The rule as a state machine fed one epoch at a time (``observe``), for training loops
    and for replays of recorded runs alike.

    ``observe(epoch, spike_counts, body_sigma2, n)``: the class-spike count of every
    monitored layer, and the first layer's body scale and number of eigenvalues.  Returns
    True once training should stop.  ``spikes_out_epoch``, ``reference``, ``stop_epoch``
    and ``recommended_epoch`` say what it saw; ``state_dict`` / ``load_state_dict`` carry
    it through a checkpoint as plain JSON.  ``n_train`` (training samples) and ``fan_ins``
    (the monitored layers' N) let it stand down in the small-data regime
    (``memorises_freely``); without them it always acts.
    """

    def __init__(
        self,
        n_classes: int,
        z: float = DEFAULT_Z,
        start_from_epoch: int = 1,
        n_train: int | None = None,
        fan_ins=(),
    ) -> None:
        if isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes < 2:
            raise ValueError(
                f"the bulk-growth rule needs the number of classes K >= 2, got {n_classes!r}"
            )
        growth_threshold(1, z)  # validates z
        self.n_classes = int(n_classes)
        self.z = float(z)
        self.start_from_epoch = int(start_from_epoch)
        self.stands_down = memorises_freely(n_train, fan_ins)
        self.spikes_out_epoch: int | None = None
        self.reference: float | None = None
        self.stop_epoch: int | None = None
        self.last_epoch: int | None = None

    @property
    def should_stop(self) -> bool:
        return self.stop_epoch is not None

    @property
    def recommended_epoch(self) -> int | None:
        """The epoch whose weights the rule recommends: the one before the stop."""
        if self.stop_epoch is None:
            return None
        return max(self.stop_epoch - 1, self.spikes_out_epoch or 0)

    def observe(
        self,
        epoch: int,
        spike_counts: Mapping[str, int | None],
        body_sigma2: float | None,
        n: int,
    ) -> bool:
        self.last_epoch = int(epoch)
        if self.stop_epoch is not None or self.stands_down or epoch < self.start_from_epoch:
            return self.should_stop
        if body_sigma2 is None or not math.isfinite(body_sigma2) or body_sigma2 <= 0:
            return False  # a spectrum that could not be measured: no evidence either way
        if self.spikes_out_epoch is None:
            if spikes_out(spike_counts, self.n_classes):
                self.spikes_out_epoch, self.reference = int(epoch), float(body_sigma2)
            return False
        if body_sigma2 > self.reference * (1.0 + growth_threshold(n, self.z)):
            self.stop_epoch = int(epoch)
        return self.should_stop

    def state_dict(self) -> dict:
        return {
            "n_classes": self.n_classes,
            "z": self.z,
            "start_from_epoch": self.start_from_epoch,
            "stands_down": self.stands_down,
            "spikes_out_epoch": self.spikes_out_epoch,
            "reference": self.reference,
            "stop_epoch": self.stop_epoch,
            "last_epoch": self.last_epoch,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Continue from ``state_dict()``; a state made for another K or z is refused."""
        if int(state["n_classes"]) != self.n_classes or float(state["z"]) != self.z:
            raise ValueError(
                f"saved bulk-growth state is for K={state['n_classes']}, z={state['z']}; "
                f"this rule has K={self.n_classes}, z={self.z}"
            )

        def optional(key, kind):
            return None if state.get(key) is None else kind(state[key])

        self.stands_down = bool(state.get("stands_down", self.stands_down))
        self.spikes_out_epoch = optional("spikes_out_epoch", int)
        self.reference = optional("reference", float)
        self.stop_epoch = optional("stop_epoch", int)
        self.last_epoch = optional("last_epoch", int)


@dataclass(frozen=True)
class BulkGrowthResult:
    """A replay of the rule over a recorded run."""

    stop_epoch: int | None
    recommended_epoch: int | None
    spikes_out_epoch: int | None
    reference: float | None
    stands_down: bool


def bulk_growth_stop(
    epochs,
    spike_counts: Mapping[str, list],
    body_sigma2,
    n: int,
    n_classes: int,
    z: float = DEFAULT_Z,
    start_from_epoch: int = 1,
    n_train: int | None = None,
    fan_ins=(),
) -> BulkGrowthResult:
    """The rule over a recorded run: ``epochs`` ascending, ``spike_counts`` per layer and
    ``body_sigma2`` (first layer) aligned with them."""
    rule = BulkGrowthStopping(n_classes, z, start_from_epoch, n_train, fan_ins)
    for index, epoch in enumerate(epochs):
        counts = {layer: values[index] for layer, values in spike_counts.items()}
        if rule.observe(int(epoch), counts, body_sigma2[index], n):
            break
    return BulkGrowthResult(
        rule.stop_epoch,
        rule.recommended_epoch,
        rule.spikes_out_epoch,
        rule.reference,
        rule.stands_down,
    )
