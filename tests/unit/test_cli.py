"""The ``smppgw`` command line as a new user meets it: ``--version``, an example in every
subcommand's ``--help`` (and every example parses), values argparse refuses with the option's
name and the rule, ``encode -`` reading stdin, and one clear line when ``--socket`` names
something that is not a listening smppgw.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from smppgw import cli

pytestmark = pytest.mark.timeout(30)

# What separates commands on an example line: only the parts that run smppgw are parsed.
_SHELL_OPERATORS = frozenset({"|", "||", "&&", ";"})
_ENV_ASSIGNMENT = re.compile(r"[A-Z_][A-Z0-9_]*=\S*")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``smppgw ARGV`` (argparse exits count as returns)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


# --- version -------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_installed_version(
    capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    code, out, err = run_cli(capsys, flag)
    assert (code, err) == (0, "")
    assert out == f"smppgw {version('smppgw')}\n"


def test_version_loads_no_subcommand() -> None:
    """``smppgw -V`` answers without importing aiohttp, the store or the daemon."""
    probe = ("import sys; from smppgw import cli\n"
             "try:\n    cli.main(['-V'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'smppgw.'))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=30, check=True)
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == "['smppgw.cli']", loaded


# --- examples in --help --------------------------------------------------------------------------


def example_commands(help_text: str) -> list[list[str]]:
    """The argument lists of every ``smppgw ...`` invocation in the help's examples section."""
    _, found, examples = help_text.partition("examples:\n")
    assert found, help_text
    commands: list[list[str]] = []
    for line in examples.splitlines():
        tokens = shlex.split(line, comments=True)
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token in _SHELL_OPERATORS:
                if segment and segment[0] == "smppgw":
                    commands.append(segment[1:])
                segment = []
            elif segment or not _ENV_ASSIGNMENT.fullmatch(token):  # VAR=value smppgw ...
                segment.append(token)
    return commands


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_subcommand_help_has_examples_that_parse(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0
    examples = example_commands(out)
    assert examples, f"no 'smppgw {command} ...' line under examples:\n{out}"
    for argv in examples:
        assert argv[0] == command, argv
        # The example is valid for the options the command really has.
        cli.build_parser(command).parse_args(argv)


def test_top_level_help_points_at_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    assert "smppgw COMMAND --help" in out
    assert "--version" in out


# --- values argparse refuses ---------------------------------------------------------------------


@pytest.mark.parametrize(("argv", "option", "value"), [
    (("send", "--to", "5511999990000", "--wait", "--timeout", "-3", "hi"), "--timeout", "-3"),
    (("send", "--to", "5511999990000", "--wait", "--timeout", "0", "hi"), "--timeout", "0"),
    (("send", "--to", "5511999990000", "--wait", "--timeout", "nan", "hi"), "--timeout", "nan"),
    (("demo", "--timeout", "-1"), "--timeout", "-1"),
    (("simulate", "--idle-timeout", "-5"), "--idle-timeout", "-5"),
])
def test_a_timeout_must_be_a_positive_number_of_seconds(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], option: str, value: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert f"argument {option}: must be a positive number of seconds, not {value!r}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("option", ["--receipt-delay", "--final-delay", "--latency"])
def test_simulator_delays_may_be_zero_but_not_negative(
    capsys: pytest.CaptureFixture[str], option: str
) -> None:
    code, _, err = run_cli(capsys, "simulate", option, "-0.5")
    assert code == 2
    assert f"argument {option}: must be 0 or more seconds, not '-0.5'" in err
    args = cli.build_parser("simulate").parse_args(["simulate", option, "0"])
    assert getattr(args, option[2:].replace("-", "_")) == 0.0


def test_simulator_mo_every_is_refused_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "simulate", "--mo-every", "0")
    assert code == 2
    assert "argument --mo-every: must be a positive number of seconds, not '0'" in err


# --- encode - ------------------------------------------------------------------------------------


def test_encode_dash_reads_the_text_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Olá, from a pipe\n"))
    code, out, _ = run_cli(capsys, "encode", "--provider", "wavy", "--json", "-")
    assert code == 0
    result = json.loads(out)
    assert result["text"] == "Olá, from a pipe"  # the final newline is the pipe's, not the text's
    assert result["characters"] == len("Olá, from a pipe")


# --- --socket on something that is not a listening smppgw ----------------------------------------


@pytest.mark.parametrize("command", ["send", "status"])
def test_socket_option_naming_a_regular_file_says_it_is_not_a_socket(
    capsys: pytest.CaptureFixture[str], sock_dir: Path, command: str
) -> None:
    path = sock_dir / "smppgw.toml"
    path.write_text("[gateway]\n")
    argv = ["--socket", str(path)] + (["--to", "5511", "hi"] if command == "send" else [])
    code, _, err = run_cli(capsys, command, *argv)
    assert code == 2
    assert err.splitlines() == [
        f"smppgw {command}: cannot reach smppgw at {path}: not a socket (--socket, or "
        "gateway.submit_socket in -c FILE, names the daemon's submit socket)"]


def test_socket_option_naming_a_directory_says_it_is_not_a_socket(
    capsys: pytest.CaptureFixture[str], sock_dir: Path
) -> None:
    code, _, err = run_cli(capsys, "status", "--socket", str(sock_dir))
    assert code == 2
    assert f"cannot reach smppgw at {sock_dir}: not a socket" in err


def test_socket_nobody_listens_on_says_smppgw_is_not_running(
    capsys: pytest.CaptureFixture[str], sock_dir: Path
) -> None:
    path = sock_dir / "submit.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as left_behind:
        left_behind.bind(str(path))  # a socket file that never listens: what a crash leaves
        code, _, err = run_cli(capsys, "status", "--socket", str(path))
    assert code == 2
    assert err.splitlines() == [
        f"smppgw status: cannot reach smppgw at {path}: connection refused: no smppgw is "
        "listening on it (not running, or a socket file left by one that stopped)"]
