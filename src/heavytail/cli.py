"""`python -m heavytail analyze PATH` (or the `heavytail` command): the spectra of any checkpoint.

PATH is a PyTorch checkpoint or state dict (.pt, .pth, .ckpt: loaded with weights_only=True,
so a file cannot run code) or a .safetensors file.  Lightning checkpoints ("state_dict"), this
repository's run checkpoints ("model") and plain state dicts are recognised.  Every weight of
two or more dimensions is a layer (named without its ".weight" suffix); the per-layer table of
``heavytail.analyze`` is printed, with --csv FILE to save it and --plot DIR for one ESD figure
per layer (its MP fit and spikes marked).  Bad files end in one line on stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail.analyze import analyze
from heavytail.classify import classify
from heavytail.esd import esd, matrix_shape

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
SHOWN = ["name", "shape", "n", "ratio", "sigma2", "n_spikes", "s_hat", "threshold", "fires", "type"]


class BadInput(ValueError):
    """A file or option the command cannot use; the message says what to do."""


def refused_objects(error: Exception) -> bool:
    """Whether torch.load(weights_only=True) refused a pickled object (rather than a file
    that is simply not a checkpoint)."""
    return "unsupported global" in str(error).lower()


def _load_torch(path: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise BadInput(f"{path} is a PyTorch file: install torch to read it") from None
    import pickle

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if refused_objects(error):
            raise BadInput(
                f"{path} holds pickled Python objects, which are not loaded (they could run "
                "code); save a state dict (model.state_dict()) instead"
            ) from None
        raise BadInput(f"{path} is not a readable PyTorch file (not a torch.save file)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInput(f"{path} is not a readable PyTorch file ({first})") from None
    return payload


def _load_safetensors(path: Path) -> dict:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise BadInput(f"{path} is a safetensors file: pip install safetensors") from None
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise BadInput(f"{path} is not a readable safetensors file ({error})") from None


def state_dict_of(payload) -> dict:
    """The tensors of a checkpoint: its "state_dict" (Lightning), "model" (our runs) or the
    mapping itself."""
    if not isinstance(payload, dict):
        raise BadInput(
            f"expected a state dict (a mapping of tensors), got {type(payload).__name__}"
        )
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(payload.get(key), dict):
            return payload[key]
    return payload


def weight_matrices(tensors: dict) -> dict[str, object]:
    """{layer: weight} for every tensor of 2 or more dimensions; "fc1.weight" -> "fc1"."""
    weights = {}
    for name, value in tensors.items():
        if getattr(value, "ndim", 0) >= 2:
            weights[name.removesuffix(".weight")] = value
    return weights


def load_weights(path: str | Path) -> dict[str, object]:
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path} does not exist or is not a file")
    if path.suffix == ".safetensors":
        tensors = _load_safetensors(path)
    elif path.suffix in TORCH_SUFFIXES:
        tensors = state_dict_of(_load_torch(path))
    else:
        raise BadInput(
            f"{path}: unknown file type {path.suffix!r}; use .pt, .pth, .ckpt or .safetensors"
        )
    weights = weight_matrices(tensors)
    if not weights:
        raise BadInput(f"{path} holds no weight of 2 or more dimensions: nothing to analyse")
    return weights


def plot_layers(weights: dict, table: pd.DataFrame, folder: Path, args) -> list[Path]:
    """One PNG per analysed layer: its ESD against the MP fit, spikes marked."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise BadInput("--plot needs matplotlib: pip install matplotlib") from None
    from heavytail.viz import plot_esd

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row in table[table["skipped"].isna()].itertuples():
        weight = weights[row.name]
        eigs = esd(weight, conv=args.conv)
        n, big_n = matrix_shape(tuple(weight.shape), args.conv)
        result = classify(eigs, args.C, args.threshold, n / big_n, n_classes=args.n_classes)
        figure = Figure(figsize=(5, 3.8), layout="constrained")
        plot_esd(figure.subplots(), eigs, result, title=f"{row.name} {tuple(weight.shape)}")
        path = folder / f"{row.name.replace('/', '_')}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heavytail", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    analyse = commands.add_parser("analyze", help="per-layer spectra of a checkpoint")
    analyse.add_argument("path", type=Path)
    analyse.add_argument("--layers", nargs="+", help="only these layers (names without .weight)")
    analyse.add_argument("--n-classes", type=int, help="K the model was trained on")
    analyse.add_argument("--threshold", choices=["paper", "calibrated"], default="calibrated")
    analyse.add_argument("--C", type=float, default=0.4, help="the paper rule's constant")
    analyse.add_argument("--conv", choices=["flatten", "slices"], default="flatten")
    analyse.add_argument("--csv", type=Path, help="write the table to this CSV file")
    analyse.add_argument("--plot", type=Path, metavar="DIR", help="one ESD figure per layer")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.n_classes is not None and args.n_classes < 1:
            raise BadInput(f"--n-classes must be at least 1, got {args.n_classes}")
        weights = load_weights(args.path)
        numpy_weights = {name: np.asarray(_as_numpy(w)) for name, w in weights.items()}
        table = analyze(
            numpy_weights,
            layers=args.layers,
            conv=args.conv,
            C=args.C,
            threshold=args.threshold,
            n_classes=args.n_classes,
        )
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table[[*SHOWN, "skipped"]].to_string(index=False))
        if args.csv:
            args.csv.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.csv, index=False)
        if args.plot:
            plot_layers(numpy_weights, table, args.plot, args)
    except (BadInput, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def _as_numpy(weight):
    if hasattr(weight, "detach"):
        return weight.detach().cpu().float().numpy()
    return weight


if __name__ == "__main__":
    sys.exit(main())
