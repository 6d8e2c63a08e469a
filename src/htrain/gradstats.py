"""Per-step gradient noise of a network's Linear layers, for the evidence-based criterion
(``heavytail.evidence``), measured beside the ordinary step.

For a Linear layer y = W x + b and a loss that is the batch mean of per-sample losses l_b, the
per-sample gradient of l_b is G_b = B dy_b x_b^T, where dy_b is the gradient autograd
hands the layer's output (it carries the 1 / B of the mean).  So the batch sum of the squared
per-sample gradients is B^2 (dy^2)^T (x^2) for W and B^2 sum_b dy_b^2 for b: one extra matrix
product per layer, no per-sample backward (the trick of Goodfellow 2015, "Efficient per-example
gradient computations", and BackPACK's first-order extensions).  Layers other than Linear
(convolutions, batch norm) are left out: the criterion is then that of the Linear parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from heavytail.evidence import VARIANCE_FLOOR


class GradientNoise:
    """Hooks on every Linear module of ``model`` that keep the last training step's inputs
    and output gradients; ``criterion(batch_size)`` after ``loss.backward()`` gives that
    step's EB as a 0-d tensor on the model's device.  Use as a context manager: the hooks go
    when it closes."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
        self.inputs: dict[nn.Linear, torch.Tensor] = {}
        self.output_grads: dict[nn.Linear, torch.Tensor] = {}
        self.handles = []
        self.active = True  # False: the next steps are not measured (no hooks' work)

    def __enter__(self) -> GradientNoise:
        for layer in self.layers:
            self.handles.append(layer.register_forward_hook(self._forward))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _forward(self, layer, inputs, output) -> None:
        if not (self.active and torch.is_grad_enabled() and output.requires_grad):
            return  # evaluation: nothing to measure
        self.inputs[layer] = inputs[0].detach()

        def keep(grad: torch.Tensor) -> None:
            self.output_grads[layer] = grad.detach()

        output.register_hook(keep)

    def criterion(self, batch_size: int) -> torch.Tensor:
        """EB of the step whose backward pass just ran, over every Linear weight and bias, as
        a 0-d tensor on the model's device (no host synchronisation).  The terms are
        ``heavytail.evidence.eb_terms``, summed layer by layer where the gradients are
        (tests/test_evidence.py checks the two agree)."""
        if not self.layers:
            return torch.tensor(float("nan"))
        weight = self.layers[0].weight
        ratio_sum = torch.zeros(1, device=weight.device, dtype=weight.dtype)
        count = torch.zeros(1, device=weight.device, dtype=weight.dtype)
        for layer in self.layers:
            if layer not in self.output_grads:
                continue
            x = self.inputs[layer].reshape(1, -1, layer.in_features)
            dy = self.output_grads[layer].reshape(1, -1, layer.out_features)
            bias_grad = None if layer.bias is None else layer.bias.grad[None]
            ratios, informative = linear_eb_sums(
                x, dy, layer.weight.grad[None], bias_grad, batch_size
            )
            ratio_sum += ratios
            count += informative
        self.inputs.clear()
        self.output_grads.clear()
        return eb_of_sums(ratio_sum, count, batch_size)[0]


def linear_eb_sums(x, dy, weight_grad, bias_grad, batch_size: int):
    """The two sums of EB (``heavytail.evidence.eb_terms``: sum_k g_k^2 / S_k over the
    informative parameters, and their count D) of R Linear layers side by side, each as
    (R,) tensors: inputs ``x`` (R, n, in), output gradients ``dy`` (R, n, out) of a batch mean
    over B = ``batch_size`` samples, mean gradients ``weight_grad`` (R, out, in) and
    ``bias_grad`` (R, ..., out) or None.  Per-sample gradients are B dy_b x_b^T, so
    S = B^2 (dy^2)^T x^2 for the weight and B^2 sum_b dy_b^2 for the bias (module docstring).
    One layer of one run is R = 1; the stacked trainer's layers are R runs at once."""
    B = batch_size
    dy2 = dy.square()
    pairs = [(weight_grad, (B * B) * torch.bmm(dy2.transpose(1, 2), x.square()))]
    if bias_grad is not None:
        pairs.append((bias_grad.reshape(dy.shape[0], -1), (B * B) * dy2.sum(1)))
    ratio_sum = count = 0
    for gradient, sum_of_squares in pairs:
        squared = gradient.square()
        variance = (sum_of_squares - B * squared) / (B - 1)
        informative = variance > VARIANCE_FLOOR / B * sum_of_squares
        ratio_sum = ratio_sum + torch.where(informative, squared / variance, 0.0).flatten(1).sum(1)
        count = count + informative.flatten(1).sum(1)
    return ratio_sum, count


def eb_of_sums(ratio_sum: torch.Tensor, count: torch.Tensor, batch_size: int) -> torch.Tensor:
    """EB = 1 - (B / D) sum_k g_k^2 / S_k, elementwise; NaN where D is 0 (as
    ``heavytail.evidence.eb_from_terms``), computed on the device."""
    return 1.0 - batch_size * ratio_sum / count.to(ratio_sum.dtype)
