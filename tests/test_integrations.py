"""The Lightning callback in a real Trainer, and `python -m heavytail analyze` on real files."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT

from heavytail.cli import main as cli_main
from htrain.data import gaussian_mixture
from htrain.models import nn1

# Lightning's own advice and deprecations (dataloader workers, its pytree use under this
# torch): not ours, so not errors here
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*litlogger.*"),
    pytest.mark.filterwarnings("ignore:.*GPU available but not used.*"),
]


@pytest.fixture(scope="module")
def lit():
    """Lightning and the Lightning parts of these tests (tests/lightning_parts.py), imported by
    the first test that needs them rather than at collection, where every xdist worker would
    pay lightning's 8 s import; the tests that use them share one worker (xdist group)."""
    pytest.importorskip("lightning")
    import lightning_parts

    return lightning_parts


LIGHTNING = pytest.mark.xdist_group("lightning")


@pytest.mark.slow
@LIGHTNING
def test_the_callback_logs_every_layer_and_stops_where_the_plain_callback_would(tmp_path, lit):
    recorder = lit.PlainRecorder()
    monitor = lit.SpectralMonitor(layers=lit.LAYERS, stop=True)
    fit = lit.trainer(tmp_path, [recorder, monitor], epochs=15, enable_checkpointing=False)
    fit.fit(lit.Classifier(), lit.loader())
    assert recorder.stopper.stop_epoch is not None, "no fire: the test needs one"
    assert monitor.stopper.stop_epoch == recorder.stopper.stop_epoch
    assert fit.current_epoch == monitor.stopper.stop_epoch  # it really stopped there
    assert monitor.stopper.fire_epoch == recorder.stopper.fire_epoch
    metrics = pd.read_csv(fit.logger.log_dir + "/metrics.csv")
    for layer in lit.LAYERS:
        for name in ("s_hat", "threshold", "fires", "n_spikes", "type"):
            assert f"spectral/{layer}/{name}" in metrics.columns
    logged = metrics[f"spectral/{lit.LAYERS[0]}/s_hat"].dropna().to_numpy()
    plain = [row["s_hat"] for row in recorder.stopper.history if row["layer"] == lit.LAYERS[0]]
    np.testing.assert_allclose(logged, plain, rtol=1e-6)  # logged as float32
    assert set(metrics[f"spectral/{lit.LAYERS[0]}/type"].dropna()) <= set(lit.TYPE_CODES.values())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@LIGHTNING
def test_a_resumed_fit_continues_the_patience_count(tmp_path, lit):
    options = dict(
        layers=lit.LAYERS, patience=3, combine="all", threshold="paper", C=0.4, stop=False
    )
    whole = lit.SpectralMonitor(**options)
    lit.trainer(tmp_path / "whole", [whole], epochs=6, enable_checkpointing=False).fit(
        lit.Classifier(), lit.loader()
    )
    first = lit.SpectralMonitor(**options)
    checkpoints = lit.L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    lit.trainer(tmp_path / "part", [first, checkpoints], epochs=3).fit(
        lit.Classifier(), lit.loader()
    )
    resumed = lit.SpectralMonitor(**options)
    again = lit.L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    lit.trainer(tmp_path / "rest", [resumed, again], epochs=6).fit(
        lit.Classifier(), lit.loader(), ckpt_path=tmp_path / "ckpt" / "last.ckpt"
    )
    assert [row["epoch"] for row in resumed.stopper.history] == [
        row["epoch"] for row in whole.stopper.history
    ]
    assert resumed.stopper.state_dict()["streak"] == whole.stopper.state_dict()["streak"]
    assert resumed.stopper.fire_epoch == whole.stopper.fire_epoch


@pytest.mark.slow
@LIGHTNING
def test_layers_can_be_chosen_by_a_filter_and_bad_names_fail_early(tmp_path, lit):
    chosen = lit.SpectralMonitor(layers=lambda name, module: name.endswith("fc3"))
    lit.trainer(tmp_path, [chosen], epochs=1, enable_checkpointing=False).fit(
        lit.Classifier(), lit.loader()
    )
    assert chosen.layers == ["model.fc3"]
    wrong = lit.SpectralMonitor(layers=["model.fc9"])
    with pytest.raises(ValueError, match="not weight layers"):
        lit.trainer(tmp_path, [wrong], epochs=1, enable_checkpointing=False).fit(
            lit.Classifier(), lit.loader()
        )


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "heavytail", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.slow
def test_analyze_a_state_dict_with_csv_and_plots(tmp_path):
    torch.manual_seed(0)
    model = nn1((100,), 8)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    result = run_cli(
        "analyze",
        str(tmp_path / "model.pt"),
        "--n-classes",
        "8",
        "--csv",
        str(tmp_path / "t.csv"),
        "--plot",
        str(tmp_path / "plots"),
        "--layers",
        "fc2",
        "fc3",
    )
    assert result.returncode == 0, result.stderr
    assert "fc2" in result.stdout and "s_hat" in result.stdout
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["name"].tolist() == ["fc2", "fc3"] and (table["type"] == "LT").all()
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["fc2.png", "fc3.png"]


@pytest.mark.slow
@LIGHTNING
def test_analyze_a_lightning_checkpoint_and_a_run_checkpoint(tmp_path, lit):
    folder = tmp_path / "ckpt"
    checkpoints = lit.L.pytorch.callbacks.ModelCheckpoint(dirpath=folder, save_last=True)
    lit.trainer(tmp_path, [checkpoints], epochs=1).fit(lit.Classifier(), lit.loader())
    assert cli_main(["analyze", str(folder / "last.ckpt"), "--csv", str(tmp_path / "l.csv")]) == 0
    names = pd.read_csv(tmp_path / "l.csv")["name"].tolist()
    assert names == [f"model.fc{i}" for i in range(1, 6)]
    # this repository's run checkpoints hold the model under "model"
    run = tmp_path / "run"
    from htrain.train import TrainConfig, run_training

    data = gaussian_mixture("d1", 8, 100, 20, 5, seed=0, delta=1.0)
    run_training(
        run, data, TrainConfig(model="nn1", layers=("fc2", "fc3"), epochs=1), progress=False
    )
    assert cli_main(["analyze", str(run / "checkpoint.pt"), "--layers", "fc2"]) == 0


def test_analyze_a_safetensors_file(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(0)
    safetensors.save_file(
        {"layer.weight": rng.standard_normal((200, 400)).astype(np.float32)},
        str(tmp_path / "m.safetensors"),
    )
    assert (
        cli_main(["analyze", str(tmp_path / "m.safetensors"), "--csv", str(tmp_path / "s.csv")])
        == 0
    )
    assert pd.read_csv(tmp_path / "s.csv")["type"].tolist() == ["LT"]


class _Payload:
    def __reduce__(self):
        return (print, ("ran",))


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"not a checkpoint", "bad.pt", "is not a readable PyTorch file"),
        (None, "missing.pt", "does not exist"),
        (b"{}", "weights.txt", "unknown file type"),
        ("pickle", "evil.pt", "pickled Python objects"),
        ("empty", "empty.pt", "no weight of 2 or more dimensions"),
    ],
)
def test_analyze_bad_files_get_one_line(tmp_path, capsys, content, name, message):
    # in process (the command's own main; test_analyze_a_state_dict_with_csv_and_plots runs
    # `python -m heavytail`)
    path = tmp_path / name
    if content == "pickle":
        torch.save({"x": _Payload()}, path)
    elif content == "empty":
        torch.save({"bias": torch.zeros(3)}, path)
    elif content is not None:
        path.write_bytes(content)
    assert cli_main(["analyze", str(path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "ran" not in captured.out


@LIGHTNING
def test_the_monitor_stops_on_bulk_growth_and_restores_the_recommended_weights(tmp_path, lit):
    # z = 0 makes the toy run stop soon after its spikes come out; what is tested is the
    # mechanics: the stop goes through Lightning and the weights handed back are the
    # recommended epoch's (the one before the stop), kept while training went on
    recorder = lit.WeightRecorder()
    monitor = lit.SpectralMonitor(
        layers=lit.LAYERS, n_classes=8, rule="bulk_growth", z=0.0, keep_weights=True, stop=True
    )
    module = lit.Classifier()
    lit.trainer(tmp_path, [recorder, monitor], epochs=40).fit(module, lit.loader())
    stop = monitor.stopper.stop_epoch
    assert stop is not None and trainer_epochs(recorder) == stop, stop
    assert monitor.recommended_epoch == stop - 1
    monitor.restore(module)
    for name, value in module.state_dict().items():
        assert torch.equal(value, recorder.states[stop - 1][name]), name
    # the monitor's state (with the rule's) goes through a checkpoint and back
    state = monitor.state_dict()
    again = lit.SpectralMonitor(layers=lit.LAYERS, n_classes=8, rule="bulk_growth", z=0.0)
    again.load_state_dict(state)
    assert again.stopper.growth.stop_epoch == stop


def trainer_epochs(recorder) -> int:
    """The last epoch a WeightRecorder saw."""
    return max(recorder.states)
