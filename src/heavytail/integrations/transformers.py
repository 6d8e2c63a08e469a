"""Spectral monitoring and early stopping as a Hugging Face ``Trainer`` callback.

    from heavytail.integrations.transformers import SpectralCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[SpectralCallback(n_classes=3, stop=True)])

At the end of every epoch (or of every evaluation, ``on="evaluate"``) each monitored Linear
layer's spectrum is analysed (``heavytail.classify``) and its numbers join the Trainer's next
log entry, so ``trainer.state.log_history`` (and trainer_state.json in each checkpoint) holds
them as

    spectral/<layer>/s_hat, threshold, fires, n_spikes, type (0 LT, 1 BT, 2 HT, 3 RC)

Reporting integrations (TensorBoard, W&B, MLflow) read the log entry in the callbacks' order:
the Trainer puts its own reporting callbacks first, so to have them see the spectral numbers
too, install this callback in front of them with ``SpectralCallback.install(trainer)``.

With ``stop=True`` training stops through ``control.should_training_stop`` when the rule
fires: the same ``heavytail.SpectralEarlyStopping`` decision as everywhere else, ``rule``
"threshold" (the paper's) or "bulk_growth" (``heavytail.growth``, with ``n_classes``).
Its state goes into the Trainer's checkpoints (``ExportableState``) and comes back on
``trainer.train(resume_from_checkpoint=...)`` when ``restore_callback_states_from_checkpoint``
is set in the ``TrainingArguments``.  Requires ``transformers``
(``pip install heavytail[transformers]``).
"""

from __future__ import annotations

from collections.abc import Iterable

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from heavytail.callback import SpectralEarlyStopping
from heavytail.growth import DEFAULT_Z
from heavytail.integrations._layers import classify_layers, layer_metrics, linear_layers

WHEN = ("epoch", "evaluate")


class SpectralCallback(TrainerCallback, ExportableState):
    """Log the monitored layers' spectra and, with ``stop``, stop when the rule fires.

    ``layers``: names (as in ``model.named_modules()``), or None for every Linear layer of
    the model with at least 2 rows and columns.  ``n_classes``, ``C``, ``threshold``,
    ``patience``, ``rule``, ``z``, ``n_train`` as in ``SpectralEarlyStopping``; ``on``:
    "epoch" or "evaluate"; ``log_prefix`` starts every logged key.
    """

    def __init__(
        self,
        layers: Iterable[str] | None = None,
        n_classes: int | None = None,
        C: float = 0.4,
        threshold: str = "paper",
        patience: int = 1,
        rule: str = "threshold",
        z: float = DEFAULT_Z,
        n_train: int | None = None,
        stop: bool = False,
        on: str = "epoch",
        log_prefix: str = "spectral",
    ) -> None:
        if on not in WHEN:
            raise ValueError(f"on must be one of {WHEN}, got {on!r}")
        self.args = {
            "layers": None if layers is None else list(layers),
            "n_classes": n_classes,
            "C": C,
            "threshold": threshold,
            "patience": patience,
            "rule": rule,
            "z": z,
            "n_train": n_train,
            "stop": stop,
            "on": on,
            "log_prefix": log_prefix,
        }
        self.layers = self.args["layers"]
        self.stop, self.on, self.log_prefix = stop, on, log_prefix
        # every argument but the callback's own three is the stopper's
        own = ("stop", "on", "log_prefix")
        self.stopper = SpectralEarlyStopping(
            **{key: value for key, value in self.args.items() if key not in own}
        )
        self.pending: dict[str, float] = {}
        self.measured = 0  # epochs or evaluations analysed so far

    # -------------------------------------------------------------- checkpointed state
    def state(self) -> dict:
        return {
            "args": dict(self.args),
            "attributes": {"stopper_state": self.stopper.state_dict(), "measured": self.measured},
        }

    @property
    def stopper_state(self) -> dict:
        return self.stopper.state_dict()

    @stopper_state.setter
    def stopper_state(self, state: dict) -> None:
        # what the Trainer sets on the instance it rebuilds from a checkpoint
        self.stopper.load_state_dict(state)
        self.layers = self.stopper.layers

    @classmethod
    def install(cls, trainer, **options) -> SpectralCallback:
        """Put a new callback first in ``trainer``'s list, ahead of its reporting callbacks,
        so that they log the spectral numbers too; returns it."""
        callback = cls(**options)
        trainer.callback_handler.callbacks.insert(0, callback)
        return callback

    # ------------------------------------------------------------------------ the hooks
    def _measure(self, args, state, control, model) -> None:
        if model is None:
            return
        if self.layers is None:
            self.layers = linear_layers(model)
            self.stopper.layers = list(self.layers)
        modules = dict(model.named_modules())
        missing = [name for name in self.layers if not hasattr(modules.get(name), "weight")]
        if missing or not self.layers:
            raise ValueError(
                f"SpectralCallback: layers {missing or self.layers} are not weight layers of "
                f"the model; it has {linear_layers(model)}"
            )
        self.measured += 1
        results = classify_layers(
            model, self.layers, self.stopper.C, self.stopper.threshold, self.stopper.n_classes
        )
        for name, result in results.items():
            for metric, value in layer_metrics(result).items():
                self.pending[f"{self.log_prefix}/{name}/{metric}"] = value
        stopped_before = self.stopper.should_stop
        self.stopper.observe(
            self.measured, {n: r.distance if r else None for n, r in results.items()}
        )
        if self.stopper.should_stop and not stopped_before:
            self.pending[f"{self.log_prefix}/stop_epoch"] = float(self.stopper.stop_epoch)
            if self.stop:
                control.should_training_stop = True
        control.should_log = True

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if self.on == "epoch":
            self._measure(args, state, control, model)
        return control

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if self.on == "evaluate":
            self._measure(args, state, control, model)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        """The pending numbers join this log entry and its record in ``log_history``."""
        if not self.pending:
            return control
        if logs is not None:
            logs.update(self.pending)
        if state.log_history:
            state.log_history[-1].update(self.pending)
        self.pending = {}
        return control
