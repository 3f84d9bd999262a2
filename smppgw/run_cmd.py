"""``smppgw run -c FILE``: the daemon in the foreground, as systemd's Type=notify runs it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from smppgw.config import DEFAULT_CONFIG_PATH, format_problem, load_config
from smppgw.errors import ConfigError
from smppgw.logs import setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help=f"config file (default {DEFAULT_CONFIG_PATH})")


def run(args: argparse.Namespace) -> int:
    path: Path = args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(format_problem(path, problem), file=sys.stderr)
        return 2
    setup_logging(config.gateway.log_level)
    for warning in config.warnings:
        print(f"warning: {format_problem(path, warning)}", file=sys.stderr)
    from smppgw.daemon import run_daemon
    from smppgw.store import StoreLockedError

    try:
        return asyncio.run(run_daemon(config, path))
    except StoreLockedError as exc:
        print(f"smppgw: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"smppgw: cannot start: {exc}", file=sys.stderr)
        return 1
