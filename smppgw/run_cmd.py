"""``smppgw run -c FILE``: the daemon in the foreground, as systemd's Type=notify runs it.

Exit status: 2 when the config has problems (one line per problem, as check-config prints
them), 1 when the daemon cannot start or a task of it failed. A start error is one line on
stderr naming the cause, never a traceback: it is what the operator reads in
``systemctl status smppgw`` and the journal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from smppgw.config import DEFAULT_CONFIG_PATH, format_problem, load_config
from smppgw.errors import ConfigError
from smppgw.logs import print_error, setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG_PATH,
                        help=f"config file (default {DEFAULT_CONFIG_PATH})")


def run(args: argparse.Namespace) -> int:
    path: Path = args.config
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print_error(format_problem(path, problem))
        return 2
    setup_logging(config.gateway.log_level)
    for warning in config.warnings:
        print_error(f"warning: {format_problem(path, warning)}", level=logging.WARNING)
    # Imported here so the config check above does not pay for aiohttp and the store.
    from smppgw.api.app import ApiStartError
    from smppgw.daemon import run_daemon
    from smppgw.metrics import MetricsStartError
    from smppgw.store import StoreError

    try:
        return asyncio.run(run_daemon(config, path))
    except StoreError as exc:
        # The state dir is locked by another daemon, the database was written by a newer
        # smppgw (StoreSchemaError), or the state dir or database cannot be opened.
        print_error(f"smppgw: cannot start: {exc}")
        return 1
    except ApiStartError as exc:
        # The submit socket path is taken by a live smppgw, is not a socket, or its directory
        # cannot be created.
        print_error(f"smppgw: cannot start: {exc}")
        return 1
    except MetricsStartError as exc:
        # gateway.metrics_listen in use (another smppgw?) or not an address of this host.
        print_error(f"smppgw: cannot start: {exc}")
        return 1
    except OSError as exc:
        print_error(f"smppgw: cannot start: {_os_error_text(exc)}")
        return 1


def _os_error_text(exc: OSError) -> str:
    """``exc`` without the ``[Errno N]`` prefix, naming the file when there is one."""
    text = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{exc.filename}: {text}"
    return text
