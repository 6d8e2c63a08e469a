"""One writer per run folder, and a checkpoint that holds only tensors and plain data.

The lock is an OS file lock (``fcntl.flock`` on ``<run>/.lock``): the kernel drops it when its
process dies, however it dies, so a killed run never leaves a stale lock behind, unlike a
marker file.  A second process on the same folder (a double launch, a Slurm requeue, a joblib
worker that outlived its parent) gets ``RunInUse`` naming the holder's PID, or waits when asked.

The checkpoint is ``torch.save`` of a dict of tensors, numbers and strings, loaded with
``weights_only=True``: a crafted file cannot run code on resume (a pickled object can).
Everything that is not a tensor (the tables so far, the stopping rules' state) travels as one
JSON string.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pickle
import sys
from pathlib import Path

import torch

from heavytail.cli import refused_objects

CHECKPOINT_FORMAT = 2  # 1: a pickled state with callback objects (no longer loaded)
RESTART_HINT = "re-run with train.restart=true to start this run over (its old files are kept)"


class RunInUse(RuntimeError):
    """Another live process holds the run folder."""


class BadCheckpoint(ValueError):
    """The checkpoint cannot be used: corrupt, from an older version, or not ours."""


class RunLock:
    """Exclusive lock on a run folder for as long as the ``with`` block runs."""

    def __init__(self, folder: str | Path, wait: bool = False) -> None:
        self.folder = Path(folder)
        self.wait = wait
        self._handle = None

    def __enter__(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / ".lock"
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            busy = error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            if busy and self.wait:
                # said before blocking: a silent wait looks like a hung run
                print(
                    f"run folder {self.folder} is in use by PID {holder}; waiting for it "
                    "(train.wait_for_lock=true)",
                    file=sys.stderr,
                    flush=True,
                )
                fcntl.flock(handle, fcntl.LOCK_EX)
            else:
                handle.close()
                if busy:
                    raise RunInUse(
                        f"run folder {self.folder} is in use by PID {holder}; wait for it to "
                        "finish, or pass train.wait_for_lock=true to wait"
                    ) from None
                raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def checkpoint_payload(
    state: dict, model_state: dict, optimizer_state: dict, generator_state, torch_rng, eigenvalues
) -> dict:
    """The dict ``torch.save`` writes: tensors and plain data only (see the module docstring).

    ``eigenvalues`` maps "<layer>/<epoch>" to a numpy array; ``state`` holds JSON values.
    Tensors are saved from the host, so a checkpoint made on a GPU loads on any machine.
    """
    return {
        "format": CHECKPOINT_FORMAT,
        "state": json.dumps(state),
        "model": {key: value.detach().cpu() for key, value in model_state.items()},
        "optimizer": _to_host(optimizer_state),
        "generator": generator_state.cpu(),
        "torch_rng": torch_rng.cpu(),
        "eigenvalues": {key: torch.from_numpy(values) for key, values in eigenvalues.items()},
    }


def _to_host(tree):
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {key: _to_host(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_host(value) for value in tree)
    return tree


def load_checkpoint(path: str | Path, map_location) -> dict:
    """The checkpoint at ``path`` with its state decoded, or ``BadCheckpoint`` in one line."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if refused_objects(error):
            raise BadCheckpoint(
                f"{path} holds pickled objects (written by an older version, or not by this "
                f"program) and is not loaded, for safety; {RESTART_HINT}"
            ) from None
        raise BadCheckpoint(f"{path} is corrupt (not a torch.save file); {RESTART_HINT}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise BadCheckpoint(f"{path} is corrupt ({_first_line(error)}); {RESTART_HINT}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise BadCheckpoint(
            f"{path} is not a run checkpoint of format {CHECKPOINT_FORMAT} (found {found!r}); "
            f"{RESTART_HINT}"
        )
    try:
        payload["state"] = json.loads(payload["state"])
    except (KeyError, TypeError, ValueError) as error:
        raise BadCheckpoint(f"{path} has no readable state ({error}); {RESTART_HINT}") from None
    return payload


def set_aside(folder: str | Path, names: list[str], stamp: str) -> Path | None:
    """Move the named files of a run folder into ``<folder>/replaced-<stamp>/``: a restart
    starts over without deleting what the earlier attempt wrote."""
    folder = Path(folder)
    present = [name for name in names if (folder / name).exists()]
    if not present:
        return None
    target = folder / f"replaced-{stamp}"
    suffix = 1
    while target.exists():  # two restarts within one second: a folder each
        suffix += 1
        target = folder / f"replaced-{stamp}-{suffix}"
    target.mkdir()
    for name in present:
        os.replace(folder / name, target / name)
    return target


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
