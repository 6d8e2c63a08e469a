"""A self-contained HTML report of a run or a sweep: `heavytail report PATH -o report.html`.

PATH is a run folder (metrics.csv, spectral.csv, eigenvalues.npz, summary.json), a collected
sweep (runs.csv, epochs.csv, spectral.parquet, and esd.parquet when its eigenvalues were
kept), or a folder of run folders (a sweep before collect).  The page holds plotly's
JavaScript inline, so it opens offline; figures are plotly's own (no hand-written script).

Per run: train / test (/ validation) accuracy and loss over epochs; per monitored layer s_hat
against each rule's threshold with the class-spike count, the top K + 2 eigenvalues over the
body's MP edge, and the ESD with its MP fit at any epoch through a slider; where each rule
fired and the best test epoch.  Per sweep: the phase diagram (final type per setting, the
paper's Figure 2.13 form), each rule's fire epoch and accuracy lost against the best epoch per
run, and links to the runs' sections.  Requires plotly (``pip install heavytail[report]``).
"""

from __future__ import annotations

import html
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from heavytail.classify import SPECTRUM_TYPES
from heavytail.columns import (
    FINAL_TYPE,
    final_type_column,
    rules_in,
    stop_epoch_column,
    threshold_column,
)
from heavytail.fit import fit_body, fit_mp
from heavytail.history import read_history
from heavytail.mp import mp_edges, mp_pdf

# sizes that keep a page small (numbers are what a report weighs: plotly.js is 4.8 MB)
MAX_SLIDER_EPOCHS = 40  # ESD frames per layer: every epoch up to this, then evenly spaced
ESD_BINS = 40
CURVE_POINTS = 80


def _compact(values) -> list[float]:
    """Four significant digits: what a screen shows, a third of the bytes of full floats."""
    return [float(f"{v:.4g}") for v in np.asarray(values, dtype=float)]


class ReportError(ValueError):
    """A PATH that is not a run or a sweep; the message says what was expected."""


@dataclass
class RunData:
    name: str
    metrics: pd.DataFrame  # by epoch
    spectral: pd.DataFrame  # rows (epoch, layer)
    eigenvalues: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)
    stops: dict[str, int | None] = field(default_factory=dict)  # rule -> stop epoch
    n_classes: int | None = None
    label: str = ""


# ----------------------------------------------------------------------------- reading


def is_run_folder(path: Path) -> bool:
    return (path / "metrics.csv").is_file() and (path / "spectral.csv").is_file()


def read_run_folder(path: Path) -> RunData:
    summary = {}
    if (path / "summary.json").is_file():
        summary = json.loads((path / "summary.json").read_text())
    analysis = summary.get("analysis", {})
    stops = {rule: info.get("stop_epoch") for rule, info in summary.get("rules", {}).items()}
    return RunData(
        name=path.name,
        metrics=pd.read_csv(path / "metrics.csv"),
        spectral=pd.read_csv(path / "spectral.csv"),
        eigenvalues=read_history(path / "eigenvalues.npz"),
        stops=stops,
        n_classes=analysis.get("n_classes"),
        label=path.name,
    )


def read_collection(path: Path, progress: bool) -> tuple[pd.DataFrame, list[RunData]]:
    runs = pd.read_csv(path / "runs.csv")
    epochs = pd.read_csv(path / "epochs.csv")
    spectral = pd.read_parquet(path / "spectral.parquet")
    esd_folder = path / "esd.parquet"
    by_run_epochs = dict(tuple(epochs.groupby("run", sort=False)))
    by_run_spectral = dict(tuple(spectral.groupby("run", sort=False)))
    rules = rules_in(spectral.columns)
    loaded = []
    for row in _progress(runs.to_dict("records"), progress, "reading runs"):
        run = row["run"]
        eigenvalues: dict[str, dict[int, np.ndarray]] = {}
        file = esd_folder / f"{run}.parquet"
        if file.is_file():
            for (layer, epoch), group in pd.read_parquet(file).groupby(["layer", "epoch"]):
                eigenvalues.setdefault(str(layer), {})[int(epoch)] = np.sort(
                    group["eigenvalue"].to_numpy(dtype=float)
                )
        K = row.get("data.K")
        loaded.append(
            RunData(
                name=run,
                metrics=by_run_epochs.get(run, pd.DataFrame()),
                spectral=by_run_spectral.get(run, pd.DataFrame()),
                eigenvalues=eigenvalues,
                stops={
                    rule: (
                        None
                        if pd.isna(row.get(stop_epoch_column(rule)))
                        else int(row[stop_epoch_column(rule)])
                    )
                    for rule in rules
                    if stop_epoch_column(rule) in row
                },
                n_classes=None if K is None or pd.isna(K) else int(K),
                label=_setting_label(row),
            )
        )
    return runs, loaded


def _setting_label(row: dict) -> str:
    parts = [str(row.get("data.name", ""))]
    for key in (
        "data.kind",
        "model.name",
        "data.delta",
        "data.t",
        "data.K",
        "data.label_noise",
        "train.batch_size",
        "seed",
    ):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(
                f"{key.split('.')[-1]}={value:g}"
                if isinstance(value, float)
                else f"{key.split('.')[-1]}={value}"
            )
    return " ".join(parts)


def _progress(items, enabled: bool, what: str):
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: no bar
        return items
    return tqdm(items, desc=what, disable=not enabled or len(items) < 5, file=sys.stderr)


def load(path: Path, progress: bool = True) -> tuple[pd.DataFrame | None, list[RunData]]:
    """(the sweep's runs table or None, the runs); ReportError for anything else."""
    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path} is not a folder: pass a run folder or a sweep folder")
    if is_run_folder(path):
        return None, [read_run_folder(path)]
    if (path / "runs.csv").is_file() and (path / "epochs.csv").is_file():
        if not (path / "spectral.parquet").is_file():
            raise ReportError(f"{path} has runs.csv but no spectral.parquet: not a collection")
        return read_collection(path, progress)
    folders = sorted(p for p in path.iterdir() if p.is_dir() and is_run_folder(p))
    if folders:
        return None, [read_run_folder(p) for p in _progress(folders, progress, "reading runs")]
    raise ReportError(
        f"{path} is neither a run folder (metrics.csv, spectral.csv), a collected sweep "
        "(runs.csv, epochs.csv, spectral.parquet) nor a folder of run folders"
    )


# ----------------------------------------------------------------------------- figures


def _html(figure, div_id: str) -> str:
    # plotly's default template is ~10 KB of JSON in every figure: a plain white one instead
    figure.update_layout(template="simple_white")
    figure.layout.template = {"layout": {"font": {"size": 11}}}
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id)


def _best_epoch(metrics: pd.DataFrame) -> int | None:
    trained = metrics[metrics["epoch"] >= 1]
    if trained.empty or "test_acc" not in trained:
        return None
    return int(trained.loc[trained["test_acc"].idxmax(), "epoch"])


def _markers(figure, run: RunData) -> None:
    best = _best_epoch(run.metrics)
    if best is not None:
        figure.add_vline(x=best, line_dash="dot", line_color="green", annotation_text="best")
    for rule, stop in run.stops.items():
        if stop is not None:
            figure.add_vline(
                x=stop,
                line_dash="dash",
                line_color="red",
                annotation_text=rule,
                annotation_textangle=-90,
            )


def metrics_figure(run: RunData):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"))
    for split, colour in (("train", "#1f77b4"), ("test", "#d62728"), ("val", "#2ca02c")):
        for col, metric in ((1, "acc"), (2, "loss")):
            column = f"{split}_{metric}"
            if column in run.metrics and run.metrics[column].notna().any():
                figure.add_trace(
                    go.Scatter(
                        x=run.metrics["epoch"],
                        y=run.metrics[column],
                        name=column,
                        line={"color": colour},
                        legendgroup=split,
                    ),
                    row=1,
                    col=col,
                )
    _markers(figure, run)
    figure.update_layout(height=330, margin={"t": 40, "b": 30}, xaxis_title="epoch")
    return figure


def shat_figure(run: RunData, layer: str):
    import plotly.graph_objects as go

    rows = run.spectral[run.spectral["layer"] == layer].sort_values("epoch")
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=rows["epoch"], y=rows["s_hat"], name="s_hat", line={"color": "black", "width": 2}
        )
    )
    for rule in rules_in(rows.columns):
        figure.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows[threshold_column(rule)],
                name=f"threshold {rule}",
                line={"dash": "dash"},
            )
        )
    if "n_spikes" in rows:
        figure.add_trace(
            go.Scatter(
                x=rows["epoch"],
                y=rows["n_spikes"],
                name="class spikes",
                yaxis="y2",
                line={"shape": "hv", "color": "#9467bd"},
            )
        )
    if run.n_classes and len(rows):
        figure.add_trace(
            go.Scatter(
                x=[rows["epoch"].min(), rows["epoch"].max()],
                y=[run.n_classes - 1] * 2,
                name="K - 1",
                yaxis="y2",
                mode="lines",
                line={"dash": "dot", "color": "#9467bd"},
            )
        )
    _markers(figure, run)
    figure.update_layout(
        title=f"{layer}: s_hat against the thresholds; class spikes",
        height=330,
        margin={"t": 40, "b": 30},
        xaxis_title="epoch",
        yaxis={"title": "s_hat"},
        yaxis2={"title": "spikes", "overlaying": "y", "side": "right", "rangemode": "tozero"},
    )
    return figure


def top_figure(run: RunData, layer: str):
    """The top K + 2 eigenvalues over the body's MP edge (``fit_body``), epoch by epoch."""
    import plotly.graph_objects as go

    spectra = run.eigenvalues.get(layer, {})
    epochs = sorted(spectra)
    count = (run.n_classes or 8) + 2
    ratios = []
    for epoch in epochs:
        eigs = spectra[epoch]
        ratio, sigma2 = fit_body(eigs)
        edge = mp_edges(ratio, sigma2)[1]
        ratios.append(eigs[::-1][:count] / edge)
    table = np.array(ratios)
    figure = go.Figure()
    for rank in range(table.shape[1] if len(table) else 0):
        figure.add_trace(
            go.Scatter(x=epochs, y=table[:, rank], name=f"lambda_{rank + 1}", line={"width": 1})
        )
    figure.add_hline(y=1.0, line_dash="dot", annotation_text="bulk edge")
    figure.update_layout(
        title=f"{layer}: top {count} eigenvalues over the body's MP edge",
        height=330,
        margin={"t": 40, "b": 30},
        xaxis_title="epoch",
        yaxis_type="log",
        showlegend=False,
    )
    return figure


def _slider_epochs(epochs: list[int]) -> list[int]:
    if len(epochs) <= MAX_SLIDER_EPOCHS:
        return epochs
    picks = np.unique(np.linspace(0, len(epochs) - 1, MAX_SLIDER_EPOCHS).round().astype(int))
    return [epochs[i] for i in picks]


def _esd_frame(eigs: np.ndarray, n_classes: int | None) -> dict:
    fit = fit_mp(eigs, n_classes=n_classes)
    top = float(eigs[-1])
    counts, edges = np.histogram(eigs, bins=ESD_BINS, range=(0.0, top * 1.02), density=True)
    centres = 0.5 * (edges[:-1] + edges[1:])
    grid = np.linspace(0.0, top * 1.02, CURVE_POINTS)
    # the density of the bulk's fitted MP law, scaled by the bulk's share of the spectrum
    curve = mp_pdf(grid, fit.ratio, fit.sigma2) * (fit.bulk.size / eigs.size)
    return {
        "x": [_compact(centres), _compact(grid)],
        "y": [_compact(counts), _compact(np.nan_to_num(curve))],
        "spikes": int(fit.n_spikes),
    }


def esd_figure(run: RunData, layer: str, div_id: str):
    import plotly.graph_objects as go

    spectra = run.eigenvalues.get(layer, {})
    epochs = _slider_epochs(sorted(spectra))
    frames = {epoch: _esd_frame(spectra[epoch], run.n_classes) for epoch in epochs}
    last = epochs[-1]
    figure = go.Figure(
        data=[
            go.Bar(
                x=frames[last]["x"][0], y=frames[last]["y"][0], name="ESD", marker_color="#7f7f7f"
            ),
            go.Scatter(
                x=frames[last]["x"][1], y=frames[last]["y"][1], name="MP fit", line={"color": "red"}
            ),
        ]
    )
    steps = [
        {
            "label": str(epoch),
            "method": "update",
            "args": [
                {"x": frames[epoch]["x"], "y": frames[epoch]["y"]},
                {
                    "title.text": f"{layer}: ESD at epoch {epoch} ({frames[epoch]['spikes']} "
                    "spikes set aside)"
                },
            ],
        }
        for epoch in epochs
    ]
    figure.update_layout(
        title={"text": f"{layer}: ESD at epoch {last} ({frames[last]['spikes']} spikes set aside)"},
        sliders=[
            {
                "active": len(epochs) - 1,
                "steps": steps,
                "currentvalue": {"prefix": "epoch "},
                "pad": {"t": 40},
            }
        ],
        height=420,
        margin={"t": 40},
        bargap=0,
        xaxis_title="eigenvalue of W W^T / N",
        yaxis_title="density",
    )
    return figure


# ------------------------------------------------------------------------------ sweep


def phase_figure(runs: pd.DataFrame, layer: str):
    """Final type per setting: difficulty on x, K (or seed) on y, the paper's Fig. 2.13."""
    import plotly.graph_objects as go

    column = final_type_column(layer)
    x_key = next(
        (
            k
            for k in ("data.delta", "data.t", "data.label_noise", "train.batch_size")
            if k in runs and runs[k].nunique() > 1
        ),
        None,
    )
    y_key = next(
        (k for k in ("data.K", "seed", "model.name") if k in runs and runs[k].nunique() > 1), None
    )
    codes = {name: i for i, name in enumerate(SPECTRUM_TYPES)}
    frame = runs.assign(code=runs[column].map(codes))
    xs = sorted(frame[x_key].dropna().unique()) if x_key else [0]
    ys = sorted(frame[y_key].dropna().unique()) if y_key else [0]
    grid = np.full((len(ys), len(xs)), np.nan)
    text = [["" for _ in xs] for _ in ys]
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            cell = frame
            if x_key:
                cell = cell[cell[x_key] == x]
            if y_key:
                cell = cell[cell[y_key] == y]
            if not cell.empty and cell["code"].notna().any():
                grid[i, j] = cell["code"].max()  # the heaviest type among the seeds
                text[i][j] = ", ".join(sorted(set(cell[column].dropna().astype(str))))
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=[str(x) for x in xs],
            y=[str(y) for y in ys],
            text=text,
            texttemplate="%{text}",
            zmin=0,
            zmax=len(SPECTRUM_TYPES) - 1,
            colorscale=[[0, "#2ca02c"], [0.33, "#ffbf00"], [0.67, "#d62728"], [1, "#444444"]],
            showscale=False,
        )
    )
    figure.update_layout(
        title=f"final type of {layer} per setting (the heaviest over seeds)",
        xaxis_title=x_key or "",
        yaxis_title=y_key or "",
        height=360,
        margin={"t": 40},
    )
    return figure


def rules_table(runs: pd.DataFrame, loaded: list[RunData]) -> str:
    """Per run: each rule's stop epoch and the accuracy it loses against the best epoch."""
    rows = []
    for run in loaded:
        metrics = run.metrics.set_index("epoch") if not run.metrics.empty else None
        best = _best_epoch(run.metrics)
        link = f'<a href="#run-{html.escape(run.name)}">{html.escape(run.label or run.name)}</a>'
        row = {"run": link, "best epoch": best}
        for rule, stop in run.stops.items():
            if stop is None or metrics is None or best is None:
                row[rule] = "-"
            else:
                lost = 100 * (metrics.loc[best, "test_acc"] - metrics.loc[stop, "test_acc"])
                row[rule] = f"{stop} ({lost:+.2f} pts)"
        rows.append(row)
    return pd.DataFrame(rows).to_html(index=False, escape=False, classes="rules", border=0)


# ------------------------------------------------------------------------------ page

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}h2{border-bottom:1px solid #ccc}
table.rules{border-collapse:collapse;font-size:13px}table.rules td,table.rules th{padding:2px 8px;
border-bottom:1px solid #eee;text-align:left}.note{color:#555;font-size:13px}"""


def run_section(run: RunData, index: int) -> str:
    layers = list(dict.fromkeys(run.spectral["layer"])) if not run.spectral.empty else []
    parts = [
        f'<h2 id="run-{html.escape(run.name)}">{html.escape(run.label or run.name)}</h2>',
        f'<p class="note">run {html.escape(run.name)}; rules that fired: '
        + (", ".join(f"{r} at {s}" for r, s in run.stops.items() if s is not None) or "none")
        + f"; best test epoch {_best_epoch(run.metrics)}</p>",
        _html(metrics_figure(run), f"metrics-{index}"),
    ]
    for number, layer in enumerate(layers):
        if "s_hat" in run.spectral:
            parts.append(_html(shat_figure(run, layer), f"shat-{index}-{number}"))
        if run.eigenvalues.get(layer):
            parts.append(_html(top_figure(run, layer), f"top-{index}-{number}"))
            parts.append(
                _html(esd_figure(run, layer, f"esd-{index}-{number}"), f"esd-{index}-{number}")
            )
    return "\n".join(parts)


PLOTLY_FILE = "plotly.min.js"


def build(path: Path, progress: bool = True, inline_js: bool = True) -> str:
    """The whole page as one string; ``inline_js=False`` loads plotly.js from the file
    PLOTLY_FILE beside the page (several pages share its 4.8 MB; still offline)."""
    from plotly.offline import get_plotlyjs

    runs, loaded = load(path, progress)
    title = f"heavytail report: {Path(path).name}"
    body = [f"<h1>{html.escape(title)}</h1>"]
    if len(loaded) > 1 or runs is not None:
        body.append(f"<p>{len(loaded)} runs.</p>")
        if runs is not None:
            layers = [c.removeprefix(FINAL_TYPE) for c in runs.columns if c.startswith(FINAL_TYPE)]
            for number, layer in enumerate(layers):
                body.append(_html(phase_figure(runs, layer), f"phase-{number}"))
        body.append("<h2>Stopping rules per run</h2>")
        body.append(rules_table(runs, loaded))
    for index, run in enumerate(_progress(loaded, progress, "drawing runs")):
        body.append(run_section(run, index))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        + (
            f"<script type='text/javascript'>{get_plotlyjs()}</script>"
            if inline_js
            else f"<script src='{PLOTLY_FILE}'></script>"
        )
        + "</head><body>"
        + "\n".join(body)
        + "</body></html>"
    )


def write(path: Path, out: Path, progress: bool = True, inline_js: bool = True) -> Path:
    """Build the report of ``path`` and write it to ``out`` (through a temporary file); with
    ``inline_js=False``, plotly.js is written beside it once (PLOTLY_FILE)."""
    import os
    import tempfile

    page = build(path, progress, inline_js)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not inline_js and not (out.parent / PLOTLY_FILE).exists():
        from plotly.offline import get_plotlyjs

        (out.parent / PLOTLY_FILE).write_text(get_plotlyjs(), encoding="utf-8")
    handle, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(page)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's files are private; a report is to share
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out
