"""Sub-commands of the ``disentbench`` CLI; one module each, discovered by :mod:`disentbench.cli`."""

from __future__ import annotations

import argparse


def comma_names(text: str) -> list[str]:
    """argparse type of a ``A,B`` option: the names, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def comma_seeds(text: str) -> list[int]:
    """argparse type of a ``0,1`` option: the integers, or a one-line usage error."""
    try:
        return [int(seed) for seed in comma_names(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None
