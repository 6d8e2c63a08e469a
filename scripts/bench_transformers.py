"""The Hugging Face callback's cost per epoch on a small model:
`python scripts/bench_transformers.py [--out FILE]`.

A 2-layer BERT (hidden 128, 14 Linear layers) on 2,048 random token sequences, 3 epochs,
trained twice in one call, without and with SpectralCallback (every Linear layer analysed at
each epoch's end); the report gives seconds per epoch of each and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import transformers

from heavytail.integrations.transformers import SpectralCallback
from htrain.io import Report


class Tokens(torch.utils.data.Dataset):
    def __init__(self, count: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 100, (count, 16), generator=generator)
        self.labels = self.ids[:, 0] % 4

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def seconds_per_epoch(callbacks: list, epochs: int, data: Tokens) -> float:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=32,
        num_labels=4,
    )
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out,
            num_train_epochs=epochs,
            per_device_train_batch_size=32,
            logging_strategy="epoch",
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
        )
        trainer = transformers.Trainer(
            model=transformers.BertForSequenceClassification(config),
            args=args,
            train_dataset=data,
            callbacks=callbacks,
        )
        began = time.perf_counter()
        trainer.train()
        return (time.perf_counter() - began) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=2048)
    args = parser.parse_args()
    say = Report()
    data = Tokens(args.samples)
    seconds_per_epoch([], 1, data)  # warm-up: imports, allocator
    bare = seconds_per_epoch([], args.epochs, data)
    callback = SpectralCallback(n_classes=4)
    monitored = seconds_per_epoch([callback], args.epochs, data)
    say(
        f"BERT 2 x 128, {args.samples} sequences, {args.epochs} epochs, "
        f"{len(callback.layers)} Linear layers monitored; torch {torch.__version__}"
    )
    say(f"  without the callback: {bare:.3f} s per epoch")
    say(f"  with SpectralCallback: {monitored:.3f} s per epoch")
    say(f"  cost per epoch: {monitored - bare:+.3f} s ({monitored / bare:.3f}x)")
    say.save(args.out, "python scripts/bench_transformers.py")


if __name__ == "__main__":
    main()
