"""The names of the result columns that carry a rule's name: one place for writer and reader.

A run's spectral.csv has ``threshold_<rule>`` and ``fires_<rule>`` per epoch and layer, a
collected runs table ``stop_epoch_<rule>`` and ``test_acc_at_stop_<rule>`` per run, a
summary ``fired_<rule>``; ``<rule>`` is a ``heavytail.Threshold`` name (``paper_C0.4``,
``calibrated``).  Code that writes or reads them builds the names here, never by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

THRESHOLD = "threshold_"
FIRES = "fires_"
STOP_EPOCH = "stop_epoch_"
ACC_AT_STOP = "test_acc_at_stop_"
FIRED = "fired_"


def threshold_column(rule: str) -> str:
    """The rule's s* at each epoch and layer (spectral.csv)."""
    return THRESHOLD + rule


def fires_column(rule: str) -> str:
    """Whether the layer's s_hat exceeds the rule's s* (spectral.csv)."""
    return FIRES + rule


def stop_epoch_column(rule: str) -> str:
    """The epoch at which the rule stops the run, empty when it never does (runs table)."""
    return STOP_EPOCH + rule


def acc_at_stop_column(rule: str) -> str:
    """The test accuracy at the rule's stop epoch (runs table)."""
    return ACC_AT_STOP + rule


def fired_column(rule: str) -> str:
    """The share of a setting's runs that the rule stopped (summaries)."""
    return FIRED + rule


def rules_in(columns: Iterable[str], prefix: str = THRESHOLD) -> list[str]:
    """The rule names of the columns that start with ``prefix``, in column order."""
    return [column.removeprefix(prefix) for column in columns if column.startswith(prefix)]


def fire_epoch_column(rule: str, layer: str) -> str:
    """The first epoch at which the layer's spectrum fired under the rule (runs table)."""
    return f"fire_epoch_{rule}_{layer}"


def acc_at_fire_column(rule: str, layer: str) -> str:
    """The test accuracy at the layer's first fire under the rule (runs table)."""
    return f"test_acc_at_fire_{rule}_{layer}"


FINAL_TYPE = "final_type_"


def final_type_column(layer: str) -> str:
    """The layer's spectrum type (LT, BT, HT, RC) at the run's last epoch (runs table)."""
    return FINAL_TYPE + layer
