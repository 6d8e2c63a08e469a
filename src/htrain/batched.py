"""Many runs of one architecture trained together, as one stacked model, in one process.

One NN1 run leaves a GPU nearly idle: its cost is kernel launches, not arithmetic.  Stacking
R runs that share an architecture turns R small problems into one: every layer's weights
become an (R, out, in) tensor and each step is a batched matrix product (``torch.baddbmm``).
Each member keeps what its single run would have:

* its own data (its mixture, seed and difficulty), batch order (its own ``torch.Generator``
  seeded like the single run's) and initialisation (built by ``htrain.train.new_model``
  from its seed, then copied into the stack);
* its own loss: the sum of the members' mean losses has, for each member's weights, the
  gradient of that member's loss alone, and SGD (momentum, weight decay) and Adam act
  elementwise (Adam's step count is shared: the members step together), so each member
  follows its single run's trajectory up to floating-point rounding
  (tests/test_batched.py: metrics and eigenvalues within float tolerance);
* its own run folder, under the same hash, with the same files, written by the same
  ``htrain.train.RunRecorder``: collect, resume and the reports cannot tell the difference.

A member that diverges, or stops (early_stop.action=stop), is finalised and drops out of the
loss (nothing of it is recorded any more; with momentum or Adam its weights may drift,
unseen); the others go on.  Only fully connected networks (NN1, NN2) are stacked
(``stackable``).
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from htrain.data import Dataset
from htrain.gradstats import eb_of_sums, linear_eb_sums
from htrain.models import MLP
from htrain.networks import NETWORKS, network_entry
from htrain.rundir import RunLock
from htrain.spectra import stacked_eigenvalues
from htrain.train import (
    RunRecorder,
    TrainConfig,
    measured,
    monitored_weights,
    new_model,
    new_optimizer,
    pick_device,
    subnormals_flushed,
)


@dataclass
class Member:
    """One run of a batch: where it is written and what defines it."""

    out_dir: Path
    data: Dataset
    config: TrainConfig
    info: dict | None = None
    config_yaml: str | None = None
    restart: bool = False


class StackedMLP(nn.Module):
    """R MLPs with the same widths as one module: fc<i>_weight (R, out, in), fc<i>_bias
    (R, 1, out).  ``forward`` takes (R, B, in) and returns (R, B, K)."""

    def __init__(self, members: list[MLP]) -> None:
        super().__init__()
        self.depth = members[0].depth
        for i in range(1, self.depth + 1):
            layers = [getattr(m, f"fc{i}") for m in members]
            weight = torch.stack([layer.weight.detach() for layer in layers])
            bias = torch.stack([layer.bias.detach() for layer in layers]).unsqueeze(1)
            self.register_parameter(f"fc{i}_weight", nn.Parameter(weight.clone()))
            self.register_parameter(f"fc{i}_bias", nn.Parameter(bias.clone()))
        # measure=True: the next forward keeps each layer's input and (through a hook) its
        # output gradient, for the evidence-based criterion (``eb_criterion``)
        self.measure = False
        self.kept: dict[int, list] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            weight, bias = getattr(self, f"fc{i}_weight"), getattr(self, f"fc{i}_bias")
            layer_input = x
            x = torch.baddbmm(bias, x, weight.transpose(1, 2))
            if self.measure and torch.is_grad_enabled():
                kept = self.kept[i] = [layer_input.detach(), None]
                x.register_hook(lambda grad, kept=kept: kept.__setitem__(1, grad.detach()))
            if i < self.depth:
                x = torch.relu(x)
        return x

    def eb_criterion(self, batch_size: int) -> torch.Tensor:
        """(R,) EB of each member's step whose backward pass just ran (measured with
        ``measure`` on), over every weight and bias: ``htrain.gradstats.linear_eb_sums``, the
        single run's ``GradientNoise.criterion`` for R runs at once.  NaN for a member whose
        gradients are all zero (one that has stopped)."""
        ratio_sum = count = 0
        for i, (layer_input, output_grad) in sorted(self.kept.items()):
            ratios, informative = linear_eb_sums(
                layer_input,
                output_grad,
                getattr(self, f"fc{i}_weight").grad,
                getattr(self, f"fc{i}_bias").grad,
                batch_size,
            )
            ratio_sum, count = ratio_sum + ratios, count + informative
        self.kept.clear()
        return eb_of_sums(ratio_sum, count, batch_size)

    def weight(self, member: int, layer: str) -> torch.Tensor:
        return getattr(self, f"{layer}_weight")[member]

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """The single model's state dict of one member ("fc1.weight", "fc1.bias", ...)."""
        state = {}
        for i in range(1, self.depth + 1):
            state[f"fc{i}.weight"] = getattr(self, f"fc{i}_weight")[member].detach().clone()
            state[f"fc{i}.bias"] = getattr(self, f"fc{i}_bias")[member, 0].detach().clone()
        return state

    def single_order(self) -> list[str]:
        """Parameter names in the order a single MLP lists its parameters."""
        return [f"fc{i}_{kind}" for i in range(1, self.depth + 1) for kind in ("weight", "bias")]


def stackable(config: TrainConfig, data: Dataset) -> tuple | None:
    """What members must share to be stacked (None: this run cannot be stacked)."""
    if not network_entry(config.model).stackable:
        return None
    sizes = (len(data.y_train), len(data.y_test), 0 if data.y_val is None else len(data.y_val))
    return (
        config.model,
        data.in_shape,
        data.num_classes,
        sizes,
        config.batch_size,
        config.epochs,
        config.optimizer,
        config.lr,
        config.momentum,
        config.weight_decay,
        config.device,
        config.grad_stats,
    )


def _stack(tensors: list[torch.Tensor], device) -> torch.Tensor:
    return torch.stack([t.reshape(len(t), -1) if t.dim() > 1 else t for t in tensors]).to(device)


def _evaluate(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096):
    """Per member (R,) mean cross-entropy and accuracy, kept on the device."""
    members, count = y.shape
    loss = torch.zeros(members, device=x.device)
    correct = torch.zeros(members, device=x.device)
    with torch.no_grad():
        for start in range(0, count, chunk):
            logits = model(x[:, start : start + chunk])
            target = y[:, start : start + chunk]
            loss += nn.functional.cross_entropy(
                logits.transpose(1, 2), target, reduction="none"
            ).sum(1)
            correct += (logits.argmax(2) == target).sum(1)
    return loss / count, correct / count


def _finite(model: StackedMLP) -> torch.Tensor:
    """(R,) whether each member's parameters are all finite."""
    flags = [torch.isfinite(p).flatten(1).all(1) for p in model.parameters()]
    return torch.stack(flags).all(0)


def train_batched(
    members: list[Member], checkpoint_every: int = 1, progress: bool = False, graphs: bool = True
) -> list[dict]:
    """Train the members as stacked models: one per group of members that ``stackable``
    puts together and that resume from the same epoch.  Every member's folder is locked
    for the whole call.  ``graphs``: replay each step as a CUDA graph on a GPU
    (``StackedStep``).  Returns each member's summary, in the given order."""
    keys = [stackable(m.config, m.data) for m in members]
    if None in keys:
        odd = members[keys.index(None)]
        raise ValueError(
            f"{odd.config.model} runs cannot be stacked "
            f"(only {', '.join(n for n, e in NETWORKS.items() if e.stackable)})"
        )
    summaries: list[dict | None] = [None] * len(members)
    with ExitStack() as locks:
        locks.enter_context(subnormals_flushed())
        recorders = []
        for member in members:
            locks.enter_context(RunLock(member.out_dir))
            recorders.append(
                RunRecorder(
                    member.out_dir,
                    member.data,
                    member.config,
                    member.info,
                    member.config_yaml,
                    member.restart,
                    checkpoint_every,
                )
            )
        groups: dict[tuple, list[int]] = {}
        for index, recorder in enumerate(recorders):
            if recorder.done:
                summaries[index] = recorder.summary()
            else:
                groups.setdefault(keys[index], []).append(index)
        for indices in groups.values():
            done = _train_group(
                [members[i] for i in indices], [recorders[i] for i in indices], progress, graphs
            )
            for position, summary in done.items():
                summaries[indices[position]] = summary
    return summaries


def _train_group(
    members: list[Member], recorders: list[RunRecorder], progress: bool, graphs: bool = True
) -> dict[int, dict]:
    """One stacked model per resume epoch within a group of stackable members."""
    config = members[0].config
    device = pick_device(config.device)
    singles, generators, rngs = [], [], []
    for member, recorder in zip(members, recorders, strict=True):
        model = new_model(member.config, member.data, device)
        rngs.append(torch.get_rng_state())  # what the single run's global RNG holds
        generator = torch.Generator().manual_seed(member.config.seed)
        shapes = {
            k: tuple(w.shape) for k, w in monitored_weights(model, member.config.layers).items()
        }
        payload = recorder.load(device, shapes)
        if payload is not None:
            model.load_state_dict(payload["model"])
            generator.set_state(payload["generator"].cpu())
            rngs[-1] = payload["torch_rng"].cpu()
        singles.append((model, payload))
        generators.append(generator)
    summaries = {}
    by_start: dict[int, list[int]] = {}
    for index, recorder in enumerate(recorders):
        if recorder.running:
            by_start.setdefault(recorder.next_epoch, []).append(index)
        else:  # ended before its summary was written (killed in between)
            summaries[index] = recorder.finish()
    for start, indices in sorted(by_start.items()):
        done = _train_stack(
            [members[i] for i in indices],
            [recorders[i] for i in indices],
            [singles[i] for i in indices],
            [generators[i] for i in indices],
            [rngs[i] for i in indices],
            start,
            device,
            progress,
            graphs,
        )
        summaries.update({indices[i]: summary for i, summary in done.items()})
    return summaries


class StackedStep:
    """One SGD step of the stack on a batch of indices (R, B), with the epoch's loss and
    accuracy accumulated on the device (``loss_sum``, ``correct``), and on a measured step
    each member's evidence-based criterion (``eb_sum``, ``eb_count``: the single run's
    ``htrain.train._train_epoch`` measures the same steps and averages them the same way).

    On a GPU (``graphs``), the step of a full batch is captured once as a CUDA graph and
    replayed: a step is then one launch instead of a few hundred small ones (the stack is
    launch-bound, docs/benchmarks.md).  A measured and an unmeasured step are two graphs.  The
    first ``WARMUP`` steps run eagerly on a side stream, as capture requires (they create
    the optimizer's state), and are real steps of the run; a capture records the next step
    without running it, and it is replayed at once.  A last, smaller batch runs eagerly on the
    same tensors.  Capture failing (an old driver, a torch without graph support for an op)
    falls back to eager steps with a message.  On a CPU every step is eager: the same
    arithmetic, in the same order.
    """

    WARMUP = 3

    def __init__(self, model, optimizer, x_train, y_train, active, batch_size, graphs):
        self.model, self.optimizer = model, optimizer
        self.x_train, self.y_train, self.active = x_train, y_train, active
        self.batch_size = batch_size
        count, device = y_train.shape[0], y_train.device
        self.rows_of = torch.arange(count, device=device)[:, None]
        self.loss_sum = torch.zeros(count, device=device)
        self.correct = torch.zeros(count, device=device)
        self.eb_sum = torch.zeros(count, device=device)
        self.eb_count = torch.zeros(count, device=device)
        self.graphs = bool(graphs) and device.type == "cuda"
        self.captured: dict[bool, torch.cuda.CUDAGraph] = {}
        self.steps = 0
        if self.graphs:
            self.static_index = torch.zeros(count, batch_size, dtype=torch.long, device=device)
            self.stream = torch.cuda.Stream(device)

    def zero(self) -> None:
        """Start an epoch's sums."""
        for total in (self.loss_sum, self.correct, self.eb_sum, self.eb_count):
            total.zero_()

    def eb_means(self) -> torch.Tensor:
        """(R,) each member's mean EB over the epoch's measured steps (NaN: none measured or
        every one NaN, as the single run's nanmean)."""
        return self.eb_sum / self.eb_count

    def _eager(self, index: torch.Tensor, measure: bool, set_to_none: bool = True) -> None:
        self.model.measure = measure
        logits = self.model(self.x_train[self.rows_of, index])
        self.model.measure = False
        target = self.y_train[self.rows_of, index]
        losses = nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(
            1
        )
        self.optimizer.zero_grad(set_to_none=set_to_none)
        torch.where(self.active, losses, torch.zeros_like(losses)).sum().backward()
        if measure:
            eb = self.model.eb_criterion(index.shape[1])
            counted = torch.isfinite(eb)
            self.eb_sum += torch.where(counted, eb, 0.0)
            self.eb_count += counted
        self.optimizer.step()
        self.loss_sum += losses.detach() * index.shape[1]
        self.correct += (logits.detach().argmax(2) == target).sum(1)

    def __call__(self, index: torch.Tensor, measure: bool = False) -> None:
        full = index.shape[1] == self.batch_size
        if not (self.graphs and full):
            self._eager(index, measure)
            return
        if measure in self.captured:
            self.static_index.copy_(index)
            self.captured[measure].replay()
            return
        self.steps += 1
        self.stream.wait_stream(torch.cuda.current_stream())
        if self.steps <= self.WARMUP:
            with torch.cuda.stream(self.stream):
                self._eager(index, measure)
            torch.cuda.current_stream().wait_stream(self.stream)
            return
        try:
            self.static_index.copy_(index)
            # grads of None: backward allocates them in the graph's private pool, where they
            # stay for its replays, whatever later eager steps do with .grad (PyTorch's
            # whole-network capture)
            self.optimizer.zero_grad(set_to_none=True)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._eager(self.static_index, measure, set_to_none=False)
            self.captured[measure] = graph
            graph.replay()
        except RuntimeError as error:  # capture is not available here: eager from now on
            print(f"batched: CUDA graph capture failed ({error}); eager steps", flush=True)
            self.graphs = False
            torch.cuda.synchronize()
            self._eager(index, measure)


def _stacked_splits(members, device) -> dict:
    """Every member's data stacked on ``device``: {split: (x (R, n, ...), y (R, n)) or None}."""
    per_member = [m.data.splits() for m in members]
    stacked = {}
    for split, first in per_member[0].items():
        if first is None:
            stacked[split] = None
            continue
        xs, ys = zip(*(splits[split] for splits in per_member), strict=True)
        stacked[split] = (_stack(list(xs), device), torch.stack(ys).to(device))
    return stacked


def _record_member(
    r, recorder, model, optimizer, template, generators, rngs, epoch, host, finite, seconds, spectra
) -> bool:
    """Record member ``r``'s epoch (saving when due); whether it is still training."""
    metrics = {"epoch": epoch, **{name: values[r] for name, values in host.items()}}
    diverged = not math.isfinite(metrics["train_loss"]) or not finite[r]
    weights = {layer: model.weight(r, layer) for layer in recorder.config.layers}
    recorder.record(epoch, metrics, weights, diverged, seconds, spectra.get(r))
    if recorder.due(epoch):
        state = _member_optimizer(model, optimizer, template, r)
        recorder.save(model.member_state(r), state, generators[r].get_state(), rngs[r])
    return recorder.running


def _train_stack(
    members, recorders, singles, generators, rngs, start, device, progress, graphs=True
):
    """The stacked epoch loop: the single run's (``htrain.train.run_training``) with one
    stacked step for all live members and the same ``measured`` metrics per member."""
    config = members[0].config
    model = StackedMLP([single for single, _ in singles]).to(device)
    # a CUDA graph can replay Adam's step only with its step count on the device
    capturable = graphs and device.type == "cuda"
    optimizer = new_optimizer(config, model.parameters(), capturable=capturable)
    _load_optimizer_state(model, optimizer, singles)
    template = new_optimizer(config, singles[0][0].parameters()).state_dict()
    count = len(members)
    splits = _stacked_splits(members, device)
    x_train, y_train = splits["train"]
    active = torch.ones(count, dtype=torch.bool, device=device)
    live, summaries = list(range(count)), {}
    n_train = y_train.shape[1]
    step = StackedStep(model, optimizer, x_train, y_train, active, config.batch_size, graphs)
    for epoch in range(start, config.epochs + 1):
        began = time.perf_counter()
        if epoch == 0:
            train_loss, train_acc = _evaluate(model, x_train, y_train)
        else:
            order = torch.stack([torch.randperm(n_train, generator=g) for g in generators])
            step.zero()
            for number, index in enumerate(order.to(device).split(config.batch_size, dim=1)):
                step(index, _measured_step(config.grad_stats, number, index.shape[1]))
            train_loss, train_acc = step.loss_sum / n_train, step.correct / n_train
        columns = measured(_evaluate, model, splits, train_loss, train_acc)
        if config.grad_stats:
            columns["eb_criterion"] = step.eb_means() if epoch else [None] * count
        finite = _finite(model)
        # one sync per epoch
        host = {k: v.tolist() if torch.is_tensor(v) else v for k, v in columns.items()}
        finite = finite.tolist()
        seconds = (time.perf_counter() - began) / max(len(live), 1)
        spectra = _stacked_spectra(model, members, live, epoch)
        for r in list(live):
            args = (model, optimizer, template, generators, rngs, epoch, host, finite, seconds)
            if not _record_member(r, recorders[r], *args, spectra):
                live.remove(r)  # finished, stopped or diverged: out of the loss
                active[r] = False
                summaries[r] = recorders[r].finish()
        if progress:
            print(f"epoch {epoch:3d}: {len(live)} of {count} runs training", flush=True)
        if not live:
            break
    return summaries


def _measured_step(every: int, number: int, batch: int) -> bool:
    """Whether step ``number`` of an epoch measures EB: the single run's rule (every
    ``every``-th step from the first; 0: never; a batch of one sample has no variance)."""
    return bool(every) and number % every == 0 and batch > 1


def _stacked_spectra(model: StackedMLP, members, live: list[int], epoch: int) -> dict:
    """{member: {layer: eigenvalues or None}} for the live members whose spectra are due at
    this epoch: one batched eigendecomposition per layer (``stacked_eigenvalues``).  The
    members of a stack share layers and spectra.every; the last epoch and divergence are
    measured by each recorder as usual (a None here falls back to the single computation)."""
    config = members[0].config
    if epoch % config.spectra_every != 0 or not live:
        return {}
    index = torch.tensor(live, device=next(model.parameters()).device)
    spectra: dict[int, dict] = {r: {} for r in live}
    for layer in config.layers:
        values = stacked_eigenvalues(getattr(model, f"{layer}_weight").index_select(0, index))
        for r, eigs in zip(live, values, strict=True):
            spectra[r][layer] = eigs
    return spectra


# the per-parameter optimizer state that is stacked like the weights: SGD's momentum, Adam's
# moments; Adam's step count is one number for the whole stack (its members step together)
STACKED_STATE = ("momentum_buffer", "exp_avg", "exp_avg_sq")


def _load_optimizer_state(model: StackedMLP, optimizer, singles) -> None:
    """Resumed members' optimizer state (SGD's momentum buffers, Adam's moments and step),
    stacked like their weights.  The members of a stack resume from the same epoch, so they
    share Adam's step count."""
    states = [payload["optimizer"] if payload else None for _, payload in singles]
    if not any(state and state.get("state") for state in states):
        return
    for position, name in enumerate(model.single_order()):
        parameter = getattr(model, name)
        saved = [(state or {}).get("state", {}).get(position, {}) for state in states]
        target = optimizer.state[parameter]
        for key in STACKED_STATE:
            if not any(key in entry for entry in saved):
                continue
            pieces = []
            for (single, _), entry in zip(singles, saved, strict=True):
                shape = list(single.parameters())[position].shape
                pieces.append(entry.get(key, torch.zeros(shape)).to(parameter.device))
            target[key] = torch.stack(pieces).reshape(parameter.shape)
        if "step" in saved[0]:
            step = torch.as_tensor(saved[0]["step"], dtype=torch.float32)
            target["step"] = step.to(parameter.device) if _capturable(optimizer) else step


def _capturable(optimizer) -> bool:
    return bool(optimizer.param_groups[0].get("capturable", False))


def _member_optimizer(model: StackedMLP, optimizer, template: dict, member: int) -> dict:
    """The single run's optimizer state dict of one member: its param_groups, and its slices
    of the stacked state (none for plain SGD), Adam's step count as a host tensor, as a
    single run keeps it."""
    state = {}
    for position, name in enumerate(model.single_order()):
        stacked = optimizer.state.get(getattr(model, name), {})
        entry = {}
        for key in STACKED_STATE:
            if key in stacked:
                piece = stacked[key][member]
                entry[key] = piece[0] if name.endswith("_bias") else piece
        if "step" in stacked:
            entry["step"] = stacked["step"].detach().to("cpu", torch.float32).clone()
        if entry:
            state[position] = entry
    return {"state": state, "param_groups": template["param_groups"]}
