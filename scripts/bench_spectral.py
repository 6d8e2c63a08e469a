"""Benchmark: our per-layer analysis against WeightWatcher 0.7.7 on the same matrices.

    make bench        # installs the optional extra: pip install -e ".[bench]"

One process, the same weight matrices for both sides: Gaussian noise (1024x512, 4096x384,
2048x1024, 1024x1024), planted rank-one spikes and a Student-t(2) heavy tail.  Per matrix:
  * ours: the eigenvalues (``esd``), then the analysis of the spectrum (``classify``, which
    runs fit_mp + spectral_distance + the power-law fit), and the sum of both;
  * WeightWatcher: its MP fit alone (``WeightWatcher.mp_fit`` on its eigenvalues) and its
    ``analyze(model, mp_fit=True)`` on a model holding the same weight (SVD included);
  * ratios: WW MP fit / our spectrum analysis (both start from eigenvalues; target >= 50x),
    and WW analyze / our whole per-layer analysis (both start from the weight);
  * both sides' MP sigma (relative to the root-mean eigenvalue, so 1 for pure noise) and
    spike counts, next to the planted truth.
Times are medians of --repeats runs after one warm-up; ratios are taken within this run.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import numpy as np

import heavytail as ht
from heavytail.families import benchmark_matrices
from htrain.io import Report
from htrain.timing import median_seconds


def ours(weight: np.ndarray, repeats: int) -> dict:
    n, big_n = min(weight.shape), max(weight.shape)
    esd_time, eigs = median_seconds(lambda: ht.esd(weight), repeats)
    analysis_time, result = median_seconds(lambda: ht.classify(eigs, ratio=n / big_n), repeats)
    return {
        "esd": esd_time,
        "analysis": analysis_time,
        "total": esd_time + analysis_time,
        "sigma": float(np.sqrt(result.distance.fit.sigma2 / eigs.mean())),
        "spikes": result.n_spikes,
        "type": result.type,
    }


def weightwatcher_side(weight: np.ndarray, repeats: int) -> dict:
    import torch
    import weightwatcher

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
    model = torch.nn.Sequential(layer)
    watcher = weightwatcher.WeightWatcher()
    n, big_n = min(weight.shape), max(weight.shape)
    evals = np.linalg.svd(weight, compute_uv=False) ** 2  # WeightWatcher's ESD scale
    quiet = dict(plot=False, savefig=False, savedir="", color="blue", hist_alpha=0.5)
    fit_args = dict(N=big_n, M=n, rf=1, layer_name="bench", layer_id=0, plot_id=0, **quiet)
    fit_args.update(rescale=True, orig_evals=evals)
    fit_time, fit = median_seconds(lambda: watcher.mp_fit(evals, **fit_args), repeats)
    num_spikes, sigma_mp = fit[0], fit[1]
    analyze_time, details = median_seconds(
        lambda: watcher.analyze(model=model, mp_fit=True, plot=False, randomize=False), 1
    )
    return {
        "fit": fit_time,
        "analyze": analyze_time,
        "sigma": float(sigma_mp),
        "spikes": int(num_spikes),
        "alpha": float(details["alpha"].iloc[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="ours vs WeightWatcher 0.7.7")
    parser.add_argument("--out", type=Path, help="also write the report to this Markdown file")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    say = Report()
    try:
        import weightwatcher  # noqa: F401
    except ImportError:
        message = "error: WeightWatcher is not installed: pip install -e '.[bench]'"
        raise SystemExit(message) from None
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(args.seed)
    ht.classify(ht.esd(rng.standard_normal((64, 128))))  # warm-up: one-time table set-up
    header = (
        f"{'matrix':22s} {'truth':24s} | {'esd':>6s} {'anal.':>6s} {'sigma':>6s} "
        f"{'spk':>3s} {'type':>4s} | {'WW fit':>7s} {'WW an.':>7s} {'sigma':>6s} "
        f"{'spk':>3s} | {'WWfit/anal.':>11s} {'WWan./total':>11s}"
    )
    say("times in ms; ours: esd, analysis of the spectrum; WW: MP fit, analyze per layer")
    say(header)
    say("-" * len(header))
    fit_ratios, total_ratios = [], []
    for name, weight, truth in benchmark_matrices(rng):
        a = ours(weight, args.repeats)
        b = weightwatcher_side(weight, args.repeats)
        fit_ratios.append(b["fit"] / a["analysis"])
        total_ratios.append(b["analyze"] / a["total"])
        say(
            f"{name:22s} {truth:24s} | {1e3 * a['esd']:6.1f} {1e3 * a['analysis']:6.1f} "
            f"{a['sigma']:6.3f} {a['spikes']:3d} {a['type']:>4s} | {1e3 * b['fit']:7.1f} "
            f"{1e3 * b['analyze']:7.1f} {b['sigma']:6.3f} {b['spikes']:3d} | "
            f"{fit_ratios[-1]:11.1f} {total_ratios[-1]:11.1f}"
        )
    say(
        f"\nWW MP fit / our analysis of the spectrum: min {min(fit_ratios):.0f}x, median "
        f"{np.median(fit_ratios):.0f}x (target >= 50x)"
    )
    say(
        f"WW analyze / our whole per-layer analysis: min {min(total_ratios):.1f}x, median "
        f"{np.median(total_ratios):.1f}x"
    )

    say.save(args.out, "make bench")


if __name__ == "__main__":
    main()
