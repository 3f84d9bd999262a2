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
from importlib.metadata import PackageNotFoundError, version
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
    "show": ("smppgw.show_cmd", "show one message (by tracking id or your id) and its history"),
    "messages": ("smppgw.messages_cmd",
                 "list messages, newest first, by state, provider, number and time"),
    "cancel": ("smppgw.cancel_cmd", "stop a message's parts not yet sent"),
    "retry": ("smppgw.retry_cmd", "send a failed, undeliverable or expired message again"),
    "provider": ("smppgw.provider_cmd", "pause or resume sending through a provider"),
    "check-config": ("smppgw.check_config_cmd", "validate a config file; print it resolved"),
    "encode": ("smppgw.encode_cmd", "show data_coding, parts, UDH and bytes for a text"),
    "simulate": ("smppgw.simulate_cmd", "run the SMSC simulator standalone"),
}

# subcommand → the "examples:" section of its --help; a test parses every smppgw line here
# against the command's real options, so they cannot drift from them.
EXAMPLES: dict[str, str] = {
    "run": """\
  smppgw run -c ./smppgw.toml                   # in a terminal, until Ctrl-C
  CREDENTIALS_DIRECTORY=/etc/smppgw/credentials smppgw run -c /etc/smppgw/smppgw.toml
""",
    "demo": """\
  smppgw demo --once                # samples, receipts, an MO; exit 0 if all reached a final state
  smppgw demo                       # keeps running: prints its socket and commands to try
  smppgw demo --verbose --timeout 30
""",
    "send": """\
  smppgw send --to 5511999999999 --from Acme "Seu código é 482913"
  smppgw send --to 5511999999999 --id order-1002 --wait --timeout 60 "Pedido enviado"
  echo "from a pipe" | smppgw send --to 5511999999999 -
  smppgw send -c /etc/smppgw/smppgw.toml --provider qikberry --to 919876543210 "Hello"
  smppgw send --socket /tmp/smppgw-demo-x/submit.sock --to 5511999990000 --wait "Hi"
""",
    "status": """\
  smppgw status
  smppgw status -c /etc/smppgw/smppgw.toml --json
  smppgw status --socket /tmp/smppgw-demo-x/submit.sock
""",
    "show": """\
  smppgw show order-1002                           # by the id you sent it with
  smppgw show 018c3f9a2b7d4e6f8a9b0c1d2e3f4a5b     # by the tracking id smppgw answered
  smppgw show -c /etc/smppgw/smppgw.toml --json order-1002
""",
    "messages": """\
  smppgw messages                                  # the newest 50
  smppgw messages --state failed --since 1d
  smppgw messages --provider wavy --to-prefix 5511999999999 --json
  smppgw messages --state queued --limit 500 -c /etc/smppgw/smppgw.toml
""",
    "cancel": """\
  smppgw cancel order-1002                         # by the id you sent it with
  smppgw cancel 018c3f9a2b7d4e6f8a9b0c1d2e3f4a5b     # by its tracking id
""",
    "retry": """\
  smppgw retry order-1002
  smppgw retry --provider qikberry 018c3f9a2b7d4e6f8a9b0c1d2e3f4a5b
""",
    "provider": """\
  smppgw provider pause wavy                       # nothing goes out through wavy
  smppgw provider resume wavy
  smppgw provider pause qikberry -c /etc/smppgw/smppgw.toml
""",
    "check-config": """\
  smppgw check-config -c /etc/smppgw/smppgw.toml
  smppgw check-config -c /etc/smppgw/smppgw.toml -q && systemctl reload smppgw
""",
    "encode": """\
  smppgw encode --provider wavy "Olá! Seu código é 482913 €"
  smppgw encode --provider qikberry --json "10€ off"
  smppgw encode --provider /etc/smppgw/smppgw.toml --name qikberry --udh16 "A long text..."
  printf 'line one\\nline two' | smppgw encode --provider wavy -
""",
    "simulate": """\
  smppgw simulate --listen 127.0.0.1:2775
  smppgw simulate --listen 127.0.0.1:2776 --tls --style wavy --system-id acme --password pw
  smppgw simulate --listen 127.0.0.1:0 --outcomes DELIVRD=0.9,UNDELIV=0.1 --mo-every 10
""",
}


def _load(module_name: str) -> _CommandModule | None:
    try:
        return cast(_CommandModule, importlib.import_module(module_name))
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def _version() -> str:
    try:
        return version("smppgw")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``selected``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="smppgw", description="SMPP 3.4 gateway: TLS binds, durable queue, local submit API",
        epilog="Run 'smppgw COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"smppgw {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        examples = EXAMPLES.get(name)  # every command has some: a test checks it
        # Raw: the examples keep their lines and indentation.
        sub = subparsers.add_parser(
            name, help=help_text, description=help_text,
            epilog=f"examples:\n{examples}" if examples else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
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
