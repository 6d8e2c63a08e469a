"""Tables in the README and docs/ that cannot drift from results/: include blocks.

A block

    <!-- include: results/tables/difficulty_bands.md -->
    ...whatever is here is replaced...
    <!-- end include -->

holds the file's text verbatim.  `python scripts/docs.py` rewrites every block from its file
(part of `make figures`); `--check` (run by the tests) fails when a page differs from what
its files say.
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(
    r"(?P<open><!-- include: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(?P<close><!-- end include -->)",
    re.S,
)
PAGES = ("README.md", "docs/*.md")


def pages(root: Path) -> list[Path]:
    found = []
    for pattern in PAGES:
        found += sorted(root.glob(pattern))
    return found


def synced(text: str, root: Path) -> str:
    """``text`` with every include block holding its file's current text."""

    def fill(match: re.Match) -> str:
        path = root / match["path"]
        if not path.is_file():
            raise FileNotFoundError(f"include of {match['path']}: no such file under {root}")
        body = path.read_text()
        if not body.endswith("\n"):
            body += "\n"
        return f"{match['open']}{body}{match['close']}"

    return BLOCK.sub(fill, text)


def stale_pages(root: Path) -> list[Path]:
    """Pages whose include blocks differ from their files."""
    return [page for page in pages(root) if synced(page.read_text(), root) != page.read_text()]
