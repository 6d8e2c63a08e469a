"""Hydra launcher that trains a sweep's runs as stacked models: `launcher=batched`."""
