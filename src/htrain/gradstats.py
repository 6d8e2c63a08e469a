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
        B = batch_size
        if not self.layers:
            return torch.tensor(float("nan"))
        weight = self.layers[0].weight
        ratio_sum = torch.zeros((), device=weight.device, dtype=weight.dtype)
        count = torch.zeros((), device=weight.device, dtype=weight.dtype)
        for layer in self.layers:
            if layer not in self.output_grads:
                continue
            x = self.inputs[layer].reshape(-1, layer.in_features)
            dy2 = self.output_grads[layer].reshape(-1, layer.out_features).square()
            pairs = [(layer.weight.grad, (B * B) * (dy2.T @ x.square()))]
            if layer.bias is not None:
                pairs.append((layer.bias.grad, (B * B) * dy2.sum(0)))
            for gradient, sum_of_squares in pairs:
                squared = gradient.square()
                variance = (sum_of_squares - B * squared) / (B - 1)
                informative = variance > VARIANCE_FLOOR / B * sum_of_squares
                ratio_sum += torch.where(informative, squared / variance, 0.0).sum()
                count += informative.sum()
        self.inputs.clear()
        self.output_grads.clear()
        return 1.0 - B * ratio_sum / count  # NaN when count is 0, as eb_from_terms
