"""Atomic writes: a temporary file in the same folder, then a rename.  A crash, a full disk
or a read-only folder leaves the old file or the new one, never half of one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomically(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file onto ``path``.

    The file gets the permissions of any file the user creates (0666 less the umask):
    ``mkstemp`` makes its temporary files private (0600), which would keep a group that
    shares an output folder from reading each other's results.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def replace_folder(path: str | Path, fill: Callable[[Path], None]) -> None:
    """Call ``fill(tmp_folder)``, then put the new folder where ``path`` was (a folder or a
    file). A failure while filling leaves the old one untouched; between the two renames
    (microseconds) the old one sits beside it in a ``.NAME.*.old`` folder, is put back if the
    second rename fails, and is removed last."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    old = None
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        for item in tmp.iterdir():
            os.chmod(item, 0o666 & ~_umask())
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:  # put the old one back before its folder is removed
                os.replace(old / path.name, path)
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)


def write_bytes(path: str | Path, payload: bytes) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(payload)

    write_atomically(path, write)


def write_text(path: str | Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write(text)

    write_atomically(path, write)


def write_json(path: str | Path, payload: dict) -> None:
    write_text(path, json.dumps(payload, indent=2, default=float) + "\n")


class Report:
    """Lines a benchmark prints, also kept for ``save``: a Markdown page with the output in
    a code block and where it was measured (the docs include these pages)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path: str | Path | None, command: str) -> None:
        if path is None:
            return
        import platform
        import subprocess
        from datetime import UTC, datetime

        def git(*args: str) -> str:
            found = subprocess.run(["git", *args], capture_output=True, text=True)
            return found.stdout.strip() if found.returncode == 0 else ""

        dirty = " with uncommitted changes" if git("status", "--porcelain", "-uno") else ""
        where = (
            f"`{command}`, {datetime.now(UTC):%Y-%m-%d}, commit "
            f"{git('rev-parse', '--short', 'HEAD') or '?'}{dirty}, "
            f"{platform.machine()} with {os.cpu_count()} CPUs"
        )
        write_text(path, "\n".join(["```", *self.lines, "```", "", where, ""]))


def results_arguments(doc: str, out: str | None = None) -> argparse.Namespace:
    """The arguments every results script takes: ``--results`` (default results/) and, for
    a script that writes one folder, ``--out`` (default RESULTS/<out>, resolved here)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    if out is not None:
        parser.add_argument("--out", type=Path, help=f"default: RESULTS/{out}")
    args = parser.parse_args()
    if out is not None:
        args.out = args.out or args.results / out
    return args


def write_from_results(doc: str, write) -> None:
    """A thin results script's main: ``write(results folder)``, a missing input a one-line
    error (the scripts that rebuild tables from what ``scripts/collect.py`` wrote)."""
    args = results_arguments(doc)
    try:
        write(args.results)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
