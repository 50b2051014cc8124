"""The ``disentbench`` command line.

Each sub-command lives in its own module under :mod:`disentbench.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). Modules are discovered automatically; heavy imports happen
inside ``func`` so that ``disentbench --help`` and ``disentbench score`` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from disentbench import __version__
from disentbench import commands as _commands


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disentbench",
        description="Disentanglement benchmark: metrics, datasets, tasks, training, evaluation, leaderboards.",
    )
    parser.add_argument("--version", action="version", version=f"disentbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, FileExistsError, KeyError, PermissionError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"disentbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"disentbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
