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
from heavytail.distance import THRESHOLD_KINDS
from heavytail.esd import layer_spectrum

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
SHOWN = ["name", "shape", "n", "ratio", "sigma2", "n_spikes", "s_hat", "threshold", "fires", "type"]


# 2^26 entries: a 4096 x 16384 layer, a few seconds of eigenvalues on a laptop; beyond it
# the analysis runs minutes to hours, so it is asked for explicitly
MAX_ELEMENTS = 2**26


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
    """Through torch when it is installed (numpy has no bfloat16, the usual Hugging Face
    dtype), else through numpy."""
    try:
        try:
            from safetensors.torch import load_file
        except ImportError:
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
    """The weight matrices of a checkpoint file, or of a Hugging Face ``save_pretrained``
    folder (its *.safetensors files, shards included, or pytorch_model*.bin)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin"))
        if not files:
            raise BadInput(
                f"{path} is a folder without *.safetensors or pytorch_model*.bin files: pass a "
                "checkpoint file or a save_pretrained folder"
            )
        tensors = {}
        for file in files:
            if file.suffix == ".safetensors":
                tensors.update(_load_safetensors(file))
            else:
                tensors.update(state_dict_of(_load_torch(file)))
        weights = weight_matrices(tensors)
        if not weights:
            raise BadInput(f"{path} holds no weight of 2 or more dimensions: nothing to analyse")
        return weights
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
        spectrum = layer_spectrum(weight, args.conv)
        eigs = spectrum.eigenvalues
        result = classify(eigs, args.C, args.threshold, spectrum.ratio, n_classes=args.n_classes)
        figure = Figure(figsize=(5, 3.8), layout="constrained")
        plot_esd(figure.subplots(), eigs, result, title=f"{row.name} {tuple(weight.shape)}")
        path = folder / f"{row.name.replace('/', '_')}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heavytail", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    analyse = commands.add_parser(
        "analyze",
        help="per-layer spectra of a checkpoint, or where each rule stops a run folder's history",
    )
    analyse.add_argument("path", type=Path)
    analyse.add_argument("--layers", nargs="+", help="only these layers (names without .weight)")
    analyse.add_argument("--n-classes", type=int, help="K the model was trained on")
    analyse.add_argument(
        "--n-train", type=int, help="training samples (run folders: the bulk-growth guard)"
    )
    analyse.add_argument("--threshold", choices=list(THRESHOLD_KINDS), default="calibrated")
    analyse.add_argument("--C", type=float, default=0.4, help="the paper rule's constant")
    analyse.add_argument("--conv", choices=["flatten", "slices"], default="flatten")
    analyse.add_argument("--csv", type=Path, help="write the table to this CSV file")
    analyse.add_argument("--plot", type=Path, metavar="DIR", help="one ESD figure per layer")
    analyse.add_argument(
        "--max-elements",
        type=int,
        default=MAX_ELEMENTS,
        help=f"largest weight analysed, in entries (default {MAX_ELEMENTS:,})",
    )
    report = commands.add_parser("report", help="a self-contained HTML report of a run or a sweep")
    report.add_argument(
        "path", type=Path, help="a run folder, a collected sweep, or a folder of runs"
    )
    report.add_argument("-o", "--out", type=Path, default=Path("report.html"))
    report.add_argument("--no-progress", action="store_true", help="no progress bar")
    report.add_argument(
        "--js-beside",
        action="store_true",
        help="load plotly.js from plotly.min.js beside the page (written once) instead of inline",
    )
    return parser


def report_main(args) -> int:
    try:
        from heavytail.integrations import report
    except ImportError as error:
        print(
            f"error: the report needs plotly: pip install heavytail[report] ({error})",
            file=sys.stderr,
        )
        return 2
    try:
        out = report.write(
            args.path, args.out, progress=not args.no_progress, inline_js=not args.js_beside
        )
    except (report.ReportError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def printable(name: str) -> str:
    """A layer name as it may be printed: control characters (terminal escape sequences in a
    crafted file) shown escaped, not sent to the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(name))


def checked_weights(weights: dict, max_elements: int) -> dict[str, np.ndarray]:
    """Real floating-point matrices as float arrays, each checked before any copy: integer,
    boolean and complex weights are refused (casting would analyse something else), and so is
    a tensor over ``max_elements`` entries (a stride-0 tensor stores one number and expands
    to any size)."""
    arrays = {}
    for name, weight in weights.items():
        shape = tuple(int(d) for d in weight.shape)
        elements = int(np.prod(shape, dtype=np.int64))
        if elements > max_elements:
            raise BadInput(
                f"layer {printable(name)} has {elements:,} entries {shape}, over the limit of "
                f"{max_elements:,}; pass --max-elements {elements} to analyse it anyway"
            )
        dtype = weight.dtype
        floating = (
            dtype.is_floating_point and not dtype.is_complex
            if hasattr(dtype, "is_floating_point")
            else np.issubdtype(dtype, np.floating)
        )
        if not floating:
            raise BadInput(
                f"layer {printable(name)} has {dtype} weights; only real floating-point "
                "weights have a spectrum to compare with MP (pass --layers to leave it out)"
            )
        arrays[name] = np.asarray(_as_numpy(weight))
    return arrays


def history_main(args) -> int:
    """``heavytail analyze RUN_FOLDER``: where each rule would have stopped the recorded run."""
    import json

    from heavytail.history import read_history, replay_history

    folder = args.path
    eigenvalues = read_history(folder / "eigenvalues.npz")
    metrics = pd.read_csv(folder / "metrics.csv")
    spectral = pd.read_csv(folder / "spectral.csv")
    shapes = {
        layer: (int(rows["n"].iloc[0]), int(rows["N"].iloc[0]))
        for layer, rows in spectral.groupby("layer", sort=False)
    }
    n_classes = args.n_classes
    if n_classes is None and (folder / "summary.json").is_file():
        n_classes = (
            json.loads((folder / "summary.json").read_text()).get("analysis", {}).get("n_classes")
        )
    outcomes, best = replay_history(eigenvalues, shapes, metrics, n_classes, args.n_train)
    print(f"{folder}: {len(metrics)} epochs, K = {n_classes}, best test epoch {best}")
    for outcome in outcomes:
        stop = "never" if outcome.stop_epoch is None else f"at epoch {outcome.stop_epoch}"
        kept = (
            ""
            if outcome.recommended_epoch is None
            else (f", weights of epoch {outcome.recommended_epoch}")
        )
        accuracy = "" if outcome.test_acc is None else f", test accuracy {outcome.test_acc:.4f}"
        print(f"  {outcome.rule:12s} stops {stop}{kept}{accuracy}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "report":
        return report_main(args)
    if args.path.is_dir() and (args.path / "eigenvalues.npz").is_file():
        try:
            return history_main(args)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: {args.path} is not a readable run folder ({error})", file=sys.stderr)
            return 2
    try:
        if args.n_classes is not None and args.n_classes < 1:
            raise BadInput(f"--n-classes must be at least 1, got {args.n_classes}")
        if not (np.isfinite(args.C) and args.C > 0):
            raise BadInput(f"--C must be a positive number, got {args.C}")
        if args.max_elements < 1:
            raise BadInput(f"--max-elements must be positive, got {args.max_elements}")
        weights = load_weights(args.path)
        if args.layers:
            unknown = [layer for layer in args.layers if layer not in weights]
            if unknown:
                raise BadInput(
                    f"--layers {', '.join(map(printable, unknown))} not in the file; it has "
                    f"{', '.join(map(printable, weights))}"
                )
            weights = {name: weights[name] for name in args.layers}
        numpy_weights = checked_weights(weights, args.max_elements)
        table = analyze(
            numpy_weights,
            layers=args.layers,
            conv=args.conv,
            C=args.C,
            threshold=args.threshold,
            n_classes=args.n_classes,
        )
        shown = table[[*SHOWN, "skipped"]].assign(name=table["name"].map(printable))
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(shown.to_string(index=False))
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
