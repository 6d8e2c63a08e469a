"""`python scripts/run.py sweep=NAME launcher=batched`: a sweep's runs trained together.

Hydra hands a launcher every job of a sweep; this one composes each job's config as Hydra
would, turns it into a run (``htrain.experiment``) in the folder Hydra would give it (the same
hash), then trains the runs that can share a stacked model together
(``htrain.batched.train_batched``: NN1 and NN2 runs with the same data sizes, batch size,
epochs and optimiser) and the others one after another (``htrain.train.run_training``).
Made for GPUs, where one small run leaves the device idle; on a CPU it gains nothing.
"""

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.heavytail_batched_launcher.batched_launcher.BatchedLauncher"
    # epochs between checkpoints of each member (tables and checkpoint are written together)
    checkpoint_every: int = 10
    # at most this many runs in one stacked model (memory: each holds its data on the device)
    max_members: int = 81
    # on a GPU, replay each full-batch step as a CUDA graph (htrain.batched.StackedStep)
    cuda_graphs: bool = True


ConfigStore.instance().store(
    group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="heavytail"
)


class BatchedLauncher(Launcher):
    def __init__(
        self, checkpoint_every: int = 10, max_members: int = 81, cuda_graphs: bool = True
    ) -> None:
        self.checkpoint_every = int(checkpoint_every)
        self.max_members = int(max_members)
        self.cuda_graphs = bool(cuda_graphs)
        self.config = self.hydra_context = self.task_function = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def _prepare(self, number: int, overrides) -> tuple[Any, JobReturn]:
        """Job ``number``'s member of the batch (its config checked, its data loaded) and
        its JobReturn, status filled in once it has trained."""
        from htrain.batched import Member
        from htrain.experiment import prepare

        sweep_config = self.hydra_context.config_loader.load_sweep_config(
            self.config, list(overrides)
        )
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = number
        HydraConfig.instance().set_config(sweep_config)
        out_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        task_cfg = copy.deepcopy(sweep_config)
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
        prepared = prepare(task_cfg, out_dir, sweep_config.hydra.runtime.choices)
        member = Member(
            out_dir,
            prepared.data,
            prepared.config,
            prepared.info,
            prepared.config_yaml,
            prepared.restart,
        )
        log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))} -> {out_dir.name}")
        job = JobReturn(
            overrides=list(overrides),
            cfg=task_cfg,
            hydra_cfg=sweep_config,
            working_dir=str(out_dir),
            task_name=sweep_config.hydra.job.name,
        )
        return member, job

    def _train(self, members: list) -> dict[int, Any]:
        """Every member's summary: the stackable ones as stacked models (max_members at a
        time), the others alone."""
        from htrain.batched import stackable, train_batched
        from htrain.train import run_training

        stacked = [i for i, m in enumerate(members) if stackable(m.config, m.data) is not None]
        summaries: dict[int, Any] = {}
        for start in range(0, len(stacked), self.max_members):
            chunk = stacked[start : start + self.max_members]
            log.info(f"Training {len(chunk)} runs as stacked models")
            chosen = [members[i] for i in chunk]
            trained = train_batched(
                chosen, self.checkpoint_every, progress=True, graphs=self.cuda_graphs
            )
            summaries.update(zip(chunk, trained, strict=True))
        for index, member in enumerate(members):
            if index not in summaries:
                log.info(f"Training {member.out_dir.name} alone ({member.config.model})")
                summaries[index] = run_training(
                    member.out_dir,
                    member.data,
                    member.config,
                    member.info,
                    progress=False,
                    config_yaml=member.config_yaml,
                    restart=member.restart,
                    checkpoint_every=self.checkpoint_every,
                )
        return summaries

    def launch(self, job_overrides, initial_job_idx: int) -> list[JobReturn]:
        setup_globals()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Preparing {len(job_overrides)} runs for the batched trainer")
        prepared = [
            self._prepare(number, overrides)
            for number, overrides in enumerate(job_overrides, start=initial_job_idx)
        ]
        summaries = self._train([member for member, _ in prepared])
        returns = [job for _, job in prepared]
        for index, job in enumerate(returns):
            job.status = JobStatus.COMPLETED
            job.return_value = summaries[index]
        return returns
