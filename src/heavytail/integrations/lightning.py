"""Spectral monitoring and early stopping as a PyTorch Lightning callback.

    from heavytail.integrations.lightning import SpectralMonitor

    trainer = lightning.Trainer(callbacks=[SpectralMonitor(n_classes=10, stop=True)])

At the end of every ``every_n_epochs``-th training epoch each monitored layer's spectrum is
analysed (``heavytail.classify`` and the chosen threshold) and logged through
``pl_module.log``, so TensorBoard, CSV, W&B and MLflow loggers get it with no extra code:

    spectral/<layer>/s_hat       the statistic s_hat
    spectral/<layer>/threshold   the rule's threshold s*
    spectral/<layer>/fires       1 when s_hat > s*
    spectral/<layer>/n_spikes    outliers set aside before the MP fit
    spectral/<layer>/type        0 LT, 1 BT, 2 HT, 3 RC (``TYPE_CODES``)

With ``stop=True`` training stops by the same rule as ``heavytail.SpectralEarlyStopping``
(the decision is made by an instance of it, fed the same results): ``patience``,
``combine``, ``start_from_epoch``, ``n_classes``.  Epochs are counted as completed epochs
(1 after the first), as in the rest of this package.  The callback's state (streaks, fire
epochs, history) is saved in Lightning checkpoints, so a resumed fit continues the count.
Requires ``lightning`` (``pip install heavytail[lightning]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from heavytail.callback import SpectralEarlyStopping, StopSettings, snapshot_of
from heavytail.distance import Threshold
from heavytail.growth import DEFAULT_Z
from heavytail.integrations._layers import TYPE_CODES, classify_layers, layer_metrics, linear_layers

default_layers = linear_layers


class SpectralMonitor(pl.Callback):
    """Log the spectra of the monitored layers each epoch and, with ``stop``, stop training
    when they leave the Marchenko-Pastur law (Meng & Yao's criterion; no validation data).

    ``layers``: names, a function (name, module) -> bool, or None for every Linear layer.
    ``C``, ``threshold`` ("paper" or "calibrated"), ``patience``, ``combine`` ("any" or
    "all"), ``start_from_epoch`` and ``n_classes`` (K of the problem: pass it, so that the K
    class spikes of a network that learns are not read as a heavy tail) as in
    ``SpectralEarlyStopping``; ``verbose`` prints each fire and the stop.  ``rule``
    ("threshold" or "bulk_growth", with ``z`` and ``n_train``) chooses what stops training, as
    there; with ``keep_weights`` the recommended weights are kept as training goes
    (``recommended_epoch``, ``restore(pl_module)`` after ``fit``).
    """

    TYPE_CODES = TYPE_CODES

    def __init__(
        self,
        layers: Iterable[str] | Callable[[str, nn.Module], bool] | None = None,
        every_n_epochs: int = 1,
        C: float = 0.4,
        threshold: str = "paper",
        patience: int = 1,
        combine: str = "any",
        start_from_epoch: int = StopSettings.start_from_epoch,
        n_classes: int | None = None,
        stop: bool = False,
        verbose: bool = False,
        log_prefix: str = "spectral",
        rule: str = "threshold",
        z: float = DEFAULT_Z,
        n_train: int | None = None,
        keep_weights: bool = False,
    ) -> None:
        super().__init__()
        if int(every_n_epochs) < 1:
            raise ValueError(f"every_n_epochs must be at least 1, got {every_n_epochs!r}")
        self.rule = Threshold(threshold, C)
        self.select = layers if callable(layers) else None
        self.layers = None if layers is None or callable(layers) else list(layers)
        self.every_n_epochs = int(every_n_epochs)
        self.stop = stop
        self.verbose = verbose
        self.log_prefix = log_prefix
        self.stopper = SpectralEarlyStopping(
            layers=self.layers,
            C=C,
            threshold=threshold,
            patience=patience,
            start_from_epoch=start_from_epoch,
            combine=combine,
            n_classes=n_classes,
            rule=rule,
            z=z,
            n_train=n_train,
            keep_weights=keep_weights,
        )

    @property
    def state_key(self) -> str:
        return self._generate_state_key(rule=self.rule.name, prefix=self.log_prefix)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        modules = dict(pl_module.named_modules())
        if self.layers is None:
            if self.select is not None:
                self.layers = [name for name, m in modules.items() if self.select(name, m)]
            else:
                self.layers = default_layers(pl_module)
        missing = [name for name in self.layers if not hasattr(modules.get(name), "weight")]
        if missing or not self.layers:
            raise ValueError(
                f"SpectralMonitor: layers {missing or self.layers} are not weight layers of the "
                f"model; it has {default_layers(pl_module)}"
            )
        if self.stopper.layers is None:
            self.stopper.layers = list(self.layers)

    def analyse(self, pl_module: nn.Module) -> dict:
        """{layer: SpectrumType} for the monitored layers' current weights."""
        return classify_layers(
            pl_module, self.layers, self.rule.C, self.rule.rule, self.stopper.n_classes
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1  # completed epochs
        if epoch % self.every_n_epochs:
            return
        results = self.analyse(pl_module)
        for name, result in results.items():
            key = f"{self.log_prefix}/{name}"
            for metric, value in layer_metrics(result).items():
                pl_module.log(f"{key}/{metric}", value, on_step=False, on_epoch=True)
        before, stopped_before = dict(self.stopper.fire_epoch), self.stopper.should_stop
        self.stopper.observe(epoch, {n: r.distance if r else None for n, r in results.items()})
        if self.stopper.keep_weights:
            self.stopper.keep(epoch, snapshot_of(pl_module), stopped_before)
        for name in self.stopper.fire_epoch.keys() - before.keys():
            if self.verbose:
                result = results[name]
                rank_zero_info(
                    f"SpectralMonitor: {name} left MP at epoch {epoch} "
                    f"(s_hat {result.s_hat:.4f} > {result.threshold:.4f}, {result.type})"
                )
        if self.stop and self.stopper.stop_epoch == epoch:
            trainer.should_stop = True
            reason = (
                f"the bulk of {self.stopper.stopped_by[0]} grew after the class spikes came out"
                if self.stopper.rule == "bulk_growth"
                else f"{', '.join(self.stopper.stopped_by)} left the Marchenko-Pastur law "
                f"({self.rule.label}, patience {self.stopper.patience})"
            )
            rank_zero_info(f"SpectralMonitor: stopping at epoch {epoch}: {reason}")

    @property
    def recommended_epoch(self) -> int | None:
        return self.stopper.recommended_epoch

    def restore(self, pl_module: nn.Module) -> None:
        """Load the recommended weights (``keep_weights=True``) into the module."""
        self.stopper.restore(pl_module)

    def state_dict(self) -> dict:
        return {"layers": self.layers, "stopper": self.stopper.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        """The monitor's state from a Lightning checkpoint; a state saved for other layers
        (or tampered with) is refused in one line rather than silently switching stopping
        off."""
        try:
            layers = state_dict["layers"]
            stopper = state_dict["stopper"]
            if self.layers is not None and list(layers) != list(self.layers):
                raise ValueError(
                    f"it monitors {layers}, this monitor {self.layers}; resume with the same "
                    "layers or start the monitor afresh"
                )
            self.stopper.load_state_dict(stopper)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"SpectralMonitor: cannot restore the saved state: {error}") from None
        self.layers = list(layers)
