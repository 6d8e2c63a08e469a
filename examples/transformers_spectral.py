"""The spectral callback in a Hugging Face Trainer, on a tiny randomly initialised BERT and
random tokens (no download): `python examples/transformers_spectral.py` (about 20 s on a CPU).

Each epoch the spectra of every Linear layer join the Trainer's log (trainer.state.log_history
and trainer_state.json); with stop=True the Trainer stops when the chosen rule fires.
"""

import tempfile

import torch
import transformers

from heavytail.integrations.transformers import SpectralCallback


class Tokens(torch.utils.data.Dataset):
    def __init__(self, count: int = 256) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 40, (count, 8), generator=generator)
        self.labels = self.ids[:, 0] % 3  # learnable: the first token decides the class

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def main() -> None:
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=16,
        num_labels=3,
    )
    model = transformers.BertForSequenceClassification(config)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out,
            num_train_epochs=5,
            per_device_train_batch_size=32,
            learning_rate=1e-3,
            logging_strategy="epoch",
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
        )
        trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens())
        callback = SpectralCallback.install(trainer, n_classes=3, stop=False)
        trainer.train()
    last = [e for e in trainer.state.log_history if "spectral/classifier/s_hat" in e][-1]
    for layer in callback.layers:
        print(
            f"{layer:45s} s_hat {last[f'spectral/{layer}/s_hat']:.3f} "
            f"threshold {last[f'spectral/{layer}/threshold']:.3f}"
        )


if __name__ == "__main__":
    main()
