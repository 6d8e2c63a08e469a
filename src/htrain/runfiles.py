"""What a run folder holds: its files and the columns of its tables.

Apart from the code that writes them (``htrain.train``, which needs torch) so that reading
runs (``htrain.collect``) starts without importing torch.
"""

from heavytail.columns import fires_column, threshold_column

RUN_FILES = (
    "config.yaml",
    "metrics.csv",
    "spectral.csv",
    "eigenvalues.npz",
    "summary.json",
    "checkpoint.pt",
    "esd_final.png",
    "done",
)

# Columns every metrics.csv and spectral.csv has (collect.py checks runs against them);
# spectral.csv also has threshold_<rule> and fires_<rule> for each rule in spectra.C.
METRICS_COLUMNS = (
    "epoch",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "spectra_time_s",
    "wall_time_s",
)
SPECTRAL_COLUMNS = (
    "epoch",
    "layer",
    "n",
    "N",
    "ratio",
    "sigma2",
    "n_spikes",
    "s_hat",
    "type",
    "tail_extent",
    "alpha",
    "skipped",
    threshold_column("calibrated"),
    fires_column("calibrated"),
)
