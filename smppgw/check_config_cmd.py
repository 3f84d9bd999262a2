"""``smppgw check-config``: validate a configuration file and show what the daemon would run with.

Prints secrets only as "***". Exit status 2 on any problem, so a deploy can be gated on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from smppgw.config import DEFAULT_CONFIG_PATH, format_problem, load_config, render_config
from smppgw.errors import ConfigError

EXIT_OK = 0
EXIT_CONFIG = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``check-config`` subcommand, added by ``cli.py`` to its subparser."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        metavar="FILE",
        help=f"configuration file (default: {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="report problems and warnings only; do not print the resolved configuration",
    )


def run(args: argparse.Namespace) -> int:
    """Problems go to stderr as ``FILE: key.path: rule`` (exit 2), one line each so scripts can
    grep them; on success warnings go to stderr and the masked config to stdout (exit 0)."""
    path = Path(args.config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(format_problem(path, problem), file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:
        print(f"warning: {format_problem(path, warning)}", file=sys.stderr)
    if not getattr(args, "quiet", False):
        sys.stdout.write(render_config(config))
    return EXIT_OK
