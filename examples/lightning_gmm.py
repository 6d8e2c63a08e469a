"""NN1 on a Gaussian mixture in PyTorch Lightning, with the spectral monitor: about a minute.

    python examples/lightning_gmm.py [--epochs 30] [--delta 0.15] [--stop]

Logs s_hat, the threshold, the spike count and the type of fc2 and fc3 every epoch to
lightning_logs/ (CSV), and prints where the spectral rule fired and would have stopped.
Needs `pip install -e ".[experiments,lightning]"`.
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from heavytail.integrations.lightning import SpectralMonitor
from htrain.data import gaussian_mixture
from htrain.models import nn1


class Classifier(L.LightningModule):
    def __init__(self, model: nn.Module, lr: float) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean(), on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--delta", type=float, default=0.15, help="D1 difficulty (small: hard)")
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--stop", action="store_true", help="really stop when the rule fires")
    args = parser.parse_args()
    L.seed_everything(0, verbose=False)
    data = gaussian_mixture("d1", 8, 100, args.per_class, 250, seed=0, delta=args.delta)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=64, shuffle=True)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=1000)
    monitor = SpectralMonitor(
        layers=["model.fc2", "model.fc3"], n_classes=8, stop=args.stop, verbose=True
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        callbacks=[monitor],
        logger=CSVLogger("lightning_logs", name="gmm"),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Classifier(nn1((100,), 8), lr=0.01), train, test)
    stopper = monitor.stopper
    print(f"logs: {trainer.logger.log_dir}/metrics.csv")
    for layer in monitor.layers:
        print(f"  {layer}: fired at epoch {stopper.fire_epoch.get(layer, 'never')}")
    print(
        f"the spectral rule would stop at epoch {stopper.stop_epoch or 'never'}"
        f" of {trainer.current_epoch}"
    )


if __name__ == "__main__":
    main()
