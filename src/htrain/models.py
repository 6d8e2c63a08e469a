"""The paper's networks (docs/paper.md section 3), PyTorch default initialisation throughout.

Fully connected layers are direct children named fc1, fc2, ... so configs can name the
monitored layers; convolutional stages sit in ``features``.
"""

from __future__ import annotations

import torch
from torch import nn

from htrain.networks import network_entry


class MLP(nn.Module):
    """Linear layers fc1..fcL between the given widths, ReLU between them."""

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.depth = len(widths) - 1
        for i in range(self.depth):
            setattr(self, f"fc{i + 1}", nn.Linear(widths[i], widths[i + 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"fc{i}")(x)
            if i < self.depth:
                x = torch.relu(x)
        return x


class ConvNet(MLP):
    """``features`` (convolutions, ending flat) followed by the fully connected MLP head."""

    def __init__(self, features: nn.Module, widths: list[int]) -> None:
        super().__init__(widths)
        self.features = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.features(x))


def nn1(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """NN1: p -> 1024 -> 512 -> 384 -> 192 -> K (p = 100 in the paper)."""
    return MLP([_flat(in_shape), 1024, 512, 384, 192, num_classes])


def nn2(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """NN2: p -> 1024 -> 512 -> K (p = 2048 in the paper)."""
    return MLP([_flat(in_shape), 1024, 512, num_classes])


def lenet(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """LeNet as drawn in the paper: two 5x5 conv + 2x2 max-pool stages (6 and 16 channels),
    flatten to 256 (so the input must be 28 x 28), then 256 -> 2450 -> 500 -> K."""
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return ConvNet(features, [256, 2450, 500, num_classes])


def minialexnet(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """MiniAlexNet (Zhang et al. 2017, as drawn in the paper) on a 28 x 28 input:
    conv 5x5 96 ch, 3x3 max-pool stride 2, conv 5x5 256 ch, 3x3 max-pool stride 2, flatten
    to 4096, then 4096 -> 384 -> 192 -> K.  Unpadded convolutions and pools padded by 1
    (TensorFlow's "same" pooling) give 28 -> 24 -> 12 -> 8 -> 4, hence 256 x 4 x 4 = 4096."""
    features = nn.Sequential(
        nn.Conv2d(in_shape[0], 96, 5),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Conv2d(96, 256, 5),
        nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Flatten(),
    )
    return ConvNet(features, [4096, 384, 192, num_classes])


VGG11_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def vgg11(in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The usual CIFAR VGG11 (3x3 convolutions with batch norm, channels 64-M-128-M-256-256-M-
    512-512-M-512-512-M, 32 x 32 input -> 512 x 1 x 1) with a fully connected head
    fc1 512 -> 512, fc2 512 -> 512, fc3 512 -> K (the paper gives no sizes)."""
    layers: list[nn.Module] = []
    channels = in_shape[0]
    for item in VGG11_CHANNELS:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.BatchNorm2d(item), nn.ReLU()]
            channels = item
    layers.append(nn.Flatten())
    return ConvNet(nn.Sequential(*layers), [512, 512, 512, num_classes])


def _flat(in_shape: tuple[int, ...]) -> int:
    size = 1
    for dim in in_shape:
        size *= dim
    return size


def build_model(name: str, in_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The registered network ``name`` (``htrain.networks``) for inputs of ``in_shape``
    (without the batch dimension).

    Raises ValueError for an unknown name or an input the network cannot take (checked by
    running one zero input through it, so the message comes before any training).
    """
    entry = network_entry(name)
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    try:
        model = entry.build(tuple(in_shape), num_classes)
        model.eval()
        with torch.no_grad():
            model(torch.zeros(2, *in_shape))
    except RuntimeError as error:
        expected = entry.expected_input
        raise ValueError(
            f"model {name} cannot take inputs of shape {tuple(in_shape)} (expects {expected}): "
            f"{str(error).splitlines()[0]}"
        ) from None
    model.train()
    return model


def check_layers(model: nn.Module, layers: list[str]) -> None:
    """Raise ValueError naming the first monitored layer that is not a Linear of the model."""
    linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for name in layers:
        if name not in linear:
            raise ValueError(f"monitored layer {name!r} is not in the model; it has {linear}")
