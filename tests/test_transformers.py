"""The Hugging Face Trainer callback on a tiny randomly initialised model and tiny data (no
downloads): logging, stopping, its state in checkpoints; `heavytail analyze` on a
save_pretrained folder."""

import json

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")
import torch  # noqa: E402

from heavytail.cli import main as cli_main  # noqa: E402
from heavytail.integrations.transformers import SpectralCallback  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


class Tokens(torch.utils.data.Dataset):
    """Random token sequences whose label is the first token mod 3: learnable, tiny."""

    def __init__(self, count: int = 96, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 40, (count, 8), generator=generator)
        self.labels = self.ids[:, 0] % 3

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def tiny_model():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=3,
    )
    return transformers.BertForSequenceClassification(config)


def trainer(tmp_path, callbacks, epochs=3, **options):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        logging_strategy="epoch",
        save_strategy="epoch",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
        **options,
    )
    return transformers.Trainer(
        model=tiny_model(), args=args, train_dataset=Tokens(), callbacks=callbacks
    )


def spectral_entries(history):
    return [entry for entry in history if any(k.startswith("spectral/") for k in entry)]


def test_the_callback_logs_every_linear_layer_each_epoch(tmp_path):
    callback = SpectralCallback(n_classes=3)
    run = trainer(tmp_path, [callback])
    run.train()
    entries = spectral_entries(run.state.log_history)
    assert len(entries) == 3
    layers = callback.layers
    assert "classifier" in layers  # 32 -> 3 has a spectrum: n = 3 >= 2
    assert any("attention.self.query" in name for name in layers)
    for name in layers:
        for metric in ("s_hat", "threshold", "fires", "n_spikes", "type"):
            assert f"spectral/{name}/{metric}" in entries[-1]
    assert entries[-1]["epoch"] == 3 and "loss" in entries[-1]  # the Trainer's own entry


def test_the_callback_stops_training_and_its_state_survives_a_checkpoint(tmp_path):
    # C tiny: the paper rule fires on the first epoch, and the Trainer stops there
    callback = SpectralCallback(n_classes=3, C=1e-9, stop=True)
    run = trainer(tmp_path, [callback], epochs=5, restore_callback_states_from_checkpoint=True)
    run.train()
    assert callback.stopper.stop_epoch == 1
    assert round(run.state.epoch) == 1
    saved = json.loads((tmp_path / "out" / "checkpoint-6" / "trainer_state.json").read_text())
    stored = saved["stateful_callbacks"]["SpectralCallback"]
    assert stored["attributes"]["stopper_state"]["stop_epoch"] == 1
    # a resumed Trainer gets the callback back with its count and decision
    again = trainer(
        tmp_path,
        [SpectralCallback(n_classes=3, C=1e-9, stop=True)],
        epochs=5,
        restore_callback_states_from_checkpoint=True,
    )
    again.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-6"))
    restored = next(c for c in again.callback_handler.callbacks if isinstance(c, SpectralCallback))
    assert restored.stopper.stop_epoch == 1 and restored.measured >= 1


def test_install_puts_it_before_the_reporting_callbacks(tmp_path):
    run = trainer(tmp_path, [])
    callback = SpectralCallback.install(run, n_classes=3)
    assert run.callback_handler.callbacks[0] is callback
    with pytest.raises(ValueError, match="on must be one of"):
        SpectralCallback(on="step")


def test_analyze_reads_a_save_pretrained_folder(tmp_path, capsys):
    tiny_model().save_pretrained(tmp_path / "model")
    assert cli_main(["analyze", str(tmp_path / "model"), "--n-classes", "3"]) == 0
    out = capsys.readouterr().out
    assert "classifier" in out and "attention.self.query" in out


@pytest.mark.slow
def test_the_example_runs():
    import subprocess
    import sys

    from helpers import ROOT

    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "transformers_spectral.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "classifier" in done.stdout and "s_hat" in done.stdout
