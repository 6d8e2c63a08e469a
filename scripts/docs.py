"""Refresh the tables included in the README and docs/ from results/: `python scripts/docs.py
[--check]` (``htrain.docs`` says how).  --check changes nothing and exits 1 when a page is
stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from htrain.docs import pages, stale_pages, synced
from htrain.io import write_text

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args()
    try:
        if args.check:
            stale = stale_pages(ROOT)
            for page in stale:
                print(f"stale: {page.relative_to(ROOT)} (run python scripts/docs.py)")
            sys.exit(1 if stale else 0)
        for page in pages(ROOT):
            text = page.read_text()
            new = synced(text, ROOT)
            if new != text:
                write_text(page, new)
                print(f"updated {page.relative_to(ROOT)}")
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
