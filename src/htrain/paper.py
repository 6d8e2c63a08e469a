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
