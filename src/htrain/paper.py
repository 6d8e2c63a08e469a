"""The paper's reported numbers, as data (Meng & Yao 2023; transcribed in docs/paper.md section 4).

Only the paper-threshold rule with C = 0.4 is reported there; K is 8 ("apparently": the
source does not say so for every row); "final" is epoch 248 of 250 at 7,500 samples per class.
A fire entry is (epoch, test accuracy in %) or None where the criterion never fired.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_C = 0.4
PAPER_K = 8
# the layers whose spectra the paper reports, per network (its figures and tables)
PAPER_LAYERS = {
    "nn1": ["fc2", "fc3"],
    "nn2": ["fc1", "fc2"],
    "lenet": ["fc1", "fc2"],
    "minialexnet": ["fc1", "fc2"],
    "vgg11": ["fc1"],
}


@dataclass(frozen=True)
class PaperRow:
    panel: str  # our sweep name: nn1_d1, nn1_d2, nn2_d1, nn2_d2
    value: float  # delta (D1) or t (D2)
    first: tuple[int, float] | None  # first monitored layer (NN1: fc2, NN2: fc1)
    second: tuple[int, float] | None  # second monitored layer (NN1: fc3, NN2: fc2)
    final_types: tuple[str, str]
    final_acc: float  # %
    reported: bool = True  # False: a setting we ran that the paper's table does not have


SYNTHETIC = (
    PaperRow("nn1_d1", 0.15, (7, 25.84), (10, 23.23), ("HT", "HT"), 20.17),
    PaperRow("nn1_d1", 0.3, (7, 49.36), (12, 45.48), ("HT", "HT"), 44.80),
    PaperRow("nn1_d1", 0.6, (8, 88.52), (32, 88.32), ("BT", "BT"), 88.30),
    PaperRow("nn1_d1", 0.9, None, None, ("LT", "LT"), 99.13),
    PaperRow("nn1_d2", 0.24, (9, 14.69), (16, 13.89), ("HT", "HT"), 13.08),
    PaperRow("nn1_d2", 2.4, (7, 77.19), (16, 74.55), ("HT", "HT"), 75.92),
    PaperRow("nn1_d2", 3.2, (9, 92.11), None, ("HT", "BT"), 92.64),
    PaperRow("nn1_d2", 4.8, None, None, ("LT", "LT"), 99.73),
    PaperRow("nn2_d1", 0.02, (6, 14.89), (7, 15.84), ("HT", "BT"), 16.02),
    PaperRow("nn2_d1", 0.13, (6, 87.03), None, ("BT", "LT"), 87.50),
    PaperRow("nn2_d1", 0.2, None, None, ("LT", "LT"), 99.14),
    PaperRow("nn2_d2", 1.2, (12, 34.22), (5, 34.63), ("HT", "HT"), 36.31),
    PaperRow("nn2_d2", 2.4, (5, 72.59), (16, 74.61), ("BT", "BT"), 75.12),
    PaperRow("nn2_d2", 4.8, None, None, ("LT", "LT"), 99.59),
)


def paper_rows(panel: str) -> list[PaperRow]:
    return [row for row in SYNTHETIC if row.panel == panel]


def format_fire(fire: tuple[int, float] | None) -> str:
    """The paper's cell format, "epoch : accuracy%", or "-" when the rule never fired."""
    return "-" if fire is None else f"{fire[0]} : {fire[1]:.2f}%"


@dataclass(frozen=True)
class RealRow:
    """A row of the paper's real-data early-stopping table (docs/paper.md section 4): C = 0.4
    fires on FC1 and FC2 as (epoch, test accuracy %) or None, and the final accuracy (None
    where training exploded: the paper reports 10%)."""

    data: str  # mnist | cifar10
    model: str  # lenet | minialexnet
    batch_size: int
    fc1: tuple[int, float] | None
    fc2: tuple[int, float] | None
    final_acc: float | None


REAL = (
    RealRow("mnist", "lenet", 16, None, (16, 99.08), 99.17),
    RealRow("mnist", "lenet", 256, None, None, 98.96),
    RealRow("cifar10", "lenet", 16, (24, 61.37), (8, 61.62), 64.99),
    RealRow("cifar10", "lenet", 256, None, (84, 54.23), 60.49),
    RealRow("mnist", "minialexnet", 16, (4, 99.23), None, 99.49),
    RealRow("mnist", "minialexnet", 256, None, None, 99.31),
    RealRow("cifar10", "minialexnet", 16, (3, 69.05), (9, 72.02), None),  # exploded: 10%
    RealRow("cifar10", "minialexnet", 64, (5, 71.61), (28, 76.35), 77.94),
    RealRow("cifar10", "minialexnet", 256, (24, 75.70), None, 75.93),
)
# the paper's final accuracy (%) and spectrum type per data set and network, all batch sizes
# (docs/paper.md section 4: MNIST about 99% and LT/BT for the three networks; CIFAR-10 HT)
REAL_FINAL = {
    ("mnist", "lenet"): (99.0, "LT/BT"),
    ("mnist", "minialexnet"): (99.0, "LT/BT"),
    ("mnist", "vgg11"): (99.0, "LT/BT"),
    ("cifar10", "lenet"): (64.0, "HT"),
    ("cifar10", "minialexnet"): (76.0, "HT"),
    ("cifar10", "vgg11"): (81.0, "HT"),
}


def real_row(data: str, model: str, batch_size: int) -> RealRow | None:
    return next(
        (r for r in REAL if (r.data, r.model, r.batch_size) == (data, model, batch_size)), None
    )
