"""The Lightning parts of tests/test_integrations.py: a classifier, its data, recorders and a
Trainer.  A module of their own, imported by the tests that use them, so that collecting the
suite does not import lightning (8 s on each xdist worker)."""

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from heavytail import SpectralEarlyStopping
from heavytail.integrations.lightning import TYPE_CODES, SpectralMonitor  # noqa: F401 (for the tests)
from htrain.data import gaussian_mixture
from htrain.models import nn1

LAYERS = ["model.fc2", "model.fc3"]


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = nn1((100,), 8)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader() -> DataLoader:
    # an easy mixture at a large learning rate: class spikes emerge within a few epochs, and
    # the gap rule (K not given) fires on them, which gives the stopping test a real fire
    data = gaussian_mixture("d1", 8, 100, 100, 10, seed=0, delta=2.0)
    generator = torch.Generator().manual_seed(0)
    return DataLoader(
        TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True, generator=generator
    )


class PlainRecorder(L.Callback):
    """The plain SpectralEarlyStopping on the same weights at the same moment."""

    def __init__(self) -> None:
        self.stopper = SpectralEarlyStopping(layers=LAYERS)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.stopper.step(pl_module, trainer.current_epoch + 1)


def trainer(tmp_path, callbacks, epochs: int, **options) -> "L.Trainer":
    return L.Trainer(
        max_epochs=epochs,
        callbacks=callbacks,
        logger=L.pytorch.loggers.CSVLogger(tmp_path, name="logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        deterministic=True,
        log_every_n_steps=1,
        **options,
    )


class WeightRecorder(L.Callback):
    """A copy of the module's weights after every epoch."""

    def __init__(self) -> None:
        self.states: dict[int, dict] = {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        self.states[epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
