"""Train one network and record its spectra: `python scripts/run.py [experiment=NAME] ...`.

Hydra stays here: the config is composed, then ``htrain.experiment`` turns it into plain
arguments for ``htrain.train.run_training`` (data, model, loop) and ``heavytail`` (spectra).
See configs/config.yaml.  Every failure a user can fix ends in one line that says what to do.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from htrain.naming import register_resolvers

register_resolvers()


def print_summary(summary: dict) -> None:
    snr = summary["snr"]
    print(
        f"\nstatus: {summary['status']}, {summary['epochs_run']} epochs, "
        f"SNR {snr if snr is None else round(snr, 3)}, "
        f"final test accuracy {summary['final_test_acc']:.4f}, "
        f"final types {summary['final_types']}"
    )
    for rule, result in summary["rules"].items():
        fired = [
            f"{layer} at epoch {epoch}"
            for layer, epoch in result["fire_epoch"].items()
            if epoch is not None
        ]
        at_stop = result["test_acc_at_stop"]
        tail = f"; test accuracy then {at_stop:.4f}" if at_stop is not None else ""
        print(f"  {rule:11s} fired: {', '.join(fired) or 'never'}{tail}")


@hydra.main(version_base="1.3", config_path="../configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from htrain.experiment import run_job

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.train.threads:
        import torch

        torch.set_num_threads(int(cfg.train.threads))  # parallel jobs must not oversubscribe
    summary = run_job(cfg, out_dir, HydraConfig.get().runtime.choices)  # or one-line exit
    print_summary(summary)
    print(f"run directory: {out_dir}")
    if cfg.get("report"):
        from heavytail.cli import main as heavytail

        heavytail(["report", str(out_dir), "-o", str(out_dir / "report.html"), "--no-progress"])


if __name__ == "__main__":
    main()
