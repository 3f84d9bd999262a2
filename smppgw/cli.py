"""The ``smppgw`` command line: parse arguments, call one function, map errors to exit codes.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their subcommand runs, so ``smppgw encode``
does not pay for aiohttp and a broken optional dependency cannot break every command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast


class _CommandModule(Protocol):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# subcommand → (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("smppgw.run_cmd", "run the daemon in the foreground (systemd Type=notify)"),
    "demo": ("smppgw.demo_cmd", "run the daemon against the built-in SMSC simulator"),
    "send": ("smppgw.send_cmd", "submit a message through the local socket"),
    "status": ("smppgw.status_cmd", "show binds, queue depth and last errors"),
    "check-config": ("smppgw.check_config_cmd", "validate a config file; print it resolved"),
    "encode": ("smppgw.encode_cmd", "show data_coding, parts, UDH and bytes for a text"),
    "simulate": ("smppgw.simulate_cmd", "run the SMSC simulator standalone"),
}


def _load(module_name: str) -> _CommandModule | None:
    try:
        return cast(_CommandModule, importlib.import_module(module_name))
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``selected``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="smppgw", description="SMPP 3.4 gateway: TLS binds, durable queue, local submit API"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = _load(module_name)
            if module is not None:
                module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    module = _load(COMMANDS[args.command][0])
    if module is None:
        print(f"smppgw: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    try:
        return module.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
