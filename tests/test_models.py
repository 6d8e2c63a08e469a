import pytest
import torch
from torch import nn

from htrain.models import build_model, check_layers
from htrain.paper import PAPER_LAYERS


def linear_shapes(model: nn.Module) -> dict[str, tuple[int, int]]:
    return {
        name: (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
    }


@pytest.mark.parametrize(
    ("name", "in_shape", "expected"),
    [
        (
            "nn1",
            (100,),
            {
                "fc1": (100, 1024),
                "fc2": (1024, 512),
                "fc3": (512, 384),
                "fc4": (384, 192),
                "fc5": (192, 8),
            },
        ),
        ("nn2", (2048,), {"fc1": (2048, 1024), "fc2": (1024, 512), "fc3": (512, 8)}),
        ("lenet", (1, 28, 28), {"fc1": (256, 2450), "fc2": (2450, 500), "fc3": (500, 8)}),
        ("minialexnet", (3, 28, 28), {"fc1": (4096, 384), "fc2": (384, 192), "fc3": (192, 8)}),
        ("vgg11", (3, 32, 32), {"fc1": (512, 512), "fc2": (512, 512), "fc3": (512, 8)}),
    ],
)
def test_networks_have_the_paper_layer_sizes(name, in_shape, expected):
    model = build_model(name, in_shape, 8)
    assert linear_shapes(model) == expected
    assert model(torch.zeros(3, *in_shape)).shape == (3, 8)
    check_layers(model, PAPER_LAYERS[name])


def test_bad_models_and_inputs_are_config_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet", (10,), 2)
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(3, 32, 32\)"):
        build_model("minialexnet", (3, 32, 32), 10)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_model("nn1", (10,), 1)
    with pytest.raises(ValueError, match="monitored layer 'fc7' is not in the model"):
        check_layers(build_model("nn2", (10,), 2), ["fc7"])
