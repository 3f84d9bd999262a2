"""`smppgw encode`: show how a text would go out to a provider, without sending anything.

Owns the subcommand's arguments and output (human or JSON). It reads at most one TOML file
for a provider's overrides, whose text keys are checked by config.parse_text_settings exactly
as check-config checks them (credentials, hosts and files are not needed here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, Final, TextIO

from smppgw.config import format_problem, parse_text_settings
from smppgw.errors import ConfigError
from smppgw.profiles import BUILTIN_PROFILES, ProviderProfile
from smppgw.smpp.errors import EncodingError, SegmentationError
from smppgw.smpp.segment import EncodedMessage, encode_message
from smppgw.smpp.text import ENCODINGS, Encoding, Skipped, TextPolicy

__all__ = ["ProviderFileError", "add_arguments", "load_provider", "run"]

EXIT_OK: Final = 0
EXIT_TEXT: Final = 1  # the text cannot be encoded or split as asked
EXIT_USAGE: Final = 2  # unknown provider, unreadable or invalid provider file

_UNIT_NAMES: Final[dict[str, str]] = {"gsm7": "septets", "latin1": "octets", "ucs2": "UTF-16 units"}
_ALPHABET_NAMES: Final[dict[str, str]] = {"gsm7": "GSM7", "latin1": "Latin-1", "ucs2": "UCS-2"}


class ProviderFileError(Exception):
    """A provider TOML file that cannot be used; the message names the file and the key."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``smppgw encode`` on the parser the CLI made for it."""
    parser.add_argument(
        "--provider",
        default="generic",
        metavar="NAME|FILE.toml",
        help=f"built-in profile ({', '.join(BUILTIN_PROFILES)}) or a TOML file with a "
        "[[provider]] table (default: generic)",
    )
    parser.add_argument(
        "--name",
        help="with a TOML file holding several [[provider]] tables, the one to use "
        "(default: the first)",
    )
    parser.add_argument("--flash", action="store_true", help="flash SMS (message class 0)")
    concat = parser.add_mutually_exclusive_group()
    for method, text in (
        ("udh8", "split long text with a UDH, 8-bit reference (IEI 0x00)"),
        ("udh16", "split long text with a UDH, 16-bit reference (IEI 0x08)"),
        ("sar", "split long text with SAR TLVs instead of a UDH"),
        ("payload", "send long text whole in message_payload (the SMSC splits it)"),
    ):
        concat.add_argument(
            f"--{method}", dest="concat", action="store_const", const=method, help=text
        )
    parser.add_argument(
        "--encoding", choices=ENCODINGS, help="force an alphabet instead of choosing one"
    )
    parser.add_argument(
        "--transliterate",
        action="store_true",
        default=None,
        help='replace characters outside GSM 03.38 that have a GSM spelling (“ → ", ã → a)',
    )
    parser.add_argument("--packed", action="store_true", help="pack GSM septets 8 into 7 octets")
    parser.add_argument(
        "--reference",
        type=int,
        metavar="N",
        default=0,
        help="concatenation reference to show in the parts (default: 0)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("text", metavar="TEXT", help="the message text ('-' reads stdin)")


def load_provider(source: str, name: str | None = None) -> tuple[ProviderProfile, bool]:
    """A profile by built-in name, or from a TOML file's [[provider]] table.

    Returns the profile and the file's ``transliterate`` choice (False for built-ins).
    The table's text keys (``profile``, ``data_coding``, ``gsm_extension``, ``concat``,
    ``max_octets_per_part``, ``max_parts``, ``transliterate``) are read and checked as
    check-config does;
    every other key is only checked to be known.
    """
    builtin = BUILTIN_PROFILES.get(source)
    if builtin is not None:
        return builtin, False
    path = Path(source)
    if path.suffix != ".toml" and not path.exists():
        raise ProviderFileError(
            f"unknown provider {source!r}: use one of {', '.join(BUILTIN_PROFILES)} or a .toml file"
        )
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ProviderFileError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProviderFileError(f"{source}: invalid TOML: {exc}") from None
    tables = document.get("provider")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ProviderFileError(f"{source}: no [[provider]] table")
    index = 0
    if name is not None:
        names = [t.get("name") for t in tables]
        if name not in names:
            raise ProviderFileError(f"{source}: no [[provider]] named {name!r}")
        index = names.index(name)
    try:
        return parse_text_settings(tables[index], f"provider[{index}]")
    except ConfigError as exc:
        raise ProviderFileError(
            "; ".join(format_problem(source, problem) for problem in exc.problems)
        ) from None


def run(args: argparse.Namespace) -> int:
    """Print the encoding of ``args.text``; the exit code says whether it can be sent."""
    out: TextIO = sys.stdout
    try:
        profile, file_transliterate = load_provider(args.provider, args.name)
    except ProviderFileError as exc:
        print(f"smppgw encode: {exc}", file=sys.stderr)
        return EXIT_USAGE
    transliterate = file_transliterate if args.transliterate is None else args.transliterate
    policy = TextPolicy.from_profile(profile, transliterate=transliterate, packed=args.packed)
    force: Encoding | None = args.encoding
    # As `smppgw send -`: the newline that ends what a pipe or heredoc gives is not the text's.
    text: str = sys.stdin.read().rstrip("\n") if args.text == "-" else args.text
    try:
        message = encode_message(
            text,
            policy,
            flash=args.flash,
            force_encoding=force,
            concat=args.concat,
            reference=args.reference,
        )
    except (EncodingError, SegmentationError, ValueError) as exc:
        print(f"smppgw encode: {exc}", file=sys.stderr)
        return EXIT_TEXT
    why = _why(profile, policy, message, forced=force is not None)
    if args.json:
        json.dump(_as_json(profile, policy, message, why), out, ensure_ascii=False)
        out.write("\n")
    else:
        _print_human(profile, policy, message, why, out)
    if message.billed_parts > profile.max_parts:
        # As the accept path refuses it (too_many_parts): shown, but it cannot be sent.
        print(f"smppgw encode: the text needs {message.billed_parts} parts; provider "
              f"{profile.name} takes at most {profile.max_parts} per message (max_parts)",
              file=sys.stderr)
        return EXIT_TEXT
    return EXIT_OK


def _char_at(char: str, position: int) -> str:
    return f"{char!r} at position {position}"


def _skip_clause(profile: ProviderProfile, policy: TextPolicy, skip: Skipped) -> str:
    if skip.reason == "not_offered":
        return f"{profile.name} takes no Latin-1 (data_coding.latin1 is not set)"
    if skip.reason == "no_flash":
        return "flash has no Latin-1 data_coding"
    assert skip.char is not None and skip.position is not None  # reason "character"
    where = _char_at(skip.char, skip.position)
    if skip.encoding == "latin1":
        return f"{where} is not in Latin-1"
    table = f"{profile.name}'s GSM table"
    if not policy.gsm_extension:
        table += " (no extension table)"
    if policy.transliterate:
        return f"{where} has no spelling in {table}"
    return f"{where} is not in {table}"


def _why(
    profile: ProviderProfile, policy: TextPolicy, message: EncodedMessage, *, forced: bool
) -> str | None:
    """Which character forced the alphabet, as a sentence; None when GSM7 simply fitted."""
    chosen = _ALPHABET_NAMES[message.encoding]
    if forced:
        return f"forced with --encoding: {chosen}"
    skipped = message.skipped
    if not skipped:
        return None
    if (
        len(skipped) == 2
        and skipped[0].reason == skipped[1].reason == "character"
        and skipped[0].position == skipped[1].position
    ):
        # One character ruled out both: '€' is in neither Wavy's GSM table nor Latin-1.
        return f"{_skip_clause(profile, policy, skipped[0])} nor in Latin-1: {chosen}"
    clauses = " and ".join(_skip_clause(profile, policy, skip) for skip in skipped)
    return f"{clauses}: {chosen}"


def _forced_by(message: EncodedMessage) -> dict[str, Any] | None:
    """The character that ruled out the last alphabet passed over for a character."""
    for skip in reversed(message.skipped):
        if skip.reason == "character":
            return {"char": skip.char, "position": skip.position}
    return None


def _billing(profile: ProviderProfile, message: EncodedMessage) -> str | None:
    if message.outside_billing_charset is None:
        return None
    char, position = message.outside_billing_charset
    return (
        f"{_char_at(char, position)} is outside {profile.name}'s 160-character table: "
        "billed, and cut, per 70 characters (67 with UDH)"
    )


def _as_json(
    profile: ProviderProfile, policy: TextPolicy, message: EncodedMessage, why: str | None
) -> dict[str, Any]:
    outside = message.outside_billing_charset
    return {
        "provider": profile.name,
        "encoding": message.encoding,
        "data_coding": message.data_coding,
        "esm_class": message.esm_class,
        "flash": message.flash,
        "packed": policy.packed and message.encoding == "gsm7",
        "transliterated": message.transliterated,
        "text": message.text,
        "characters": message.characters,
        "units": message.units,
        "unit": _UNIT_NAMES[message.encoding],
        "why": why,
        "forced_by": _forced_by(message),
        "skipped": [
            {
                "encoding": skip.encoding,
                "reason": skip.reason,
                "char": skip.char,
                "position": skip.position,
            }
            for skip in message.skipped
        ],
        "billing": None
        if outside is None
        else {"char": outside[0], "position": outside[1], "rule": _billing(profile, message)},
        "concat": message.concat,
        "reference": message.reference,
        "cost": message.billed_parts,
        "max_parts": profile.max_parts,
        "parts": [
            {
                "udh": part.udh.hex(),
                "body": part.body.hex(),
                "short_message": part.short_message.hex(),
                "sar": list(part.sar) if part.sar is not None else None,
                "payload": part.payload,
                "units": part.units,
            }
            for part in message.parts
        ],
    }


def _print_human(
    profile: ProviderProfile,
    policy: TextPolicy,
    message: EncodedMessage,
    why: str | None,
    out: TextIO,
) -> None:
    unit = _UNIT_NAMES[message.encoding]
    flash = " flash" if message.flash else ""
    packed = ", packed" if policy.packed and message.encoding == "gsm7" else ""
    udhi = " (UDHI)" if message.esm_class & 0x40 else ""
    rows = [
        ("provider", profile.name),
        ("encoding", f"{message.encoding}{flash}{packed}"),
    ]
    if why is not None:
        rows.append(("why", why))
    rows += [
        ("data_coding", f"{message.data_coding} (0x{message.data_coding:02X})"),
        ("esm_class", f"0x{message.esm_class:02X}{udhi}"),
        ("characters", str(message.characters)),
        ("units", f"{message.units} {unit}"),
    ]
    if message.transliterated:
        rows.append(("sent text", message.text))
    concat: str = message.concat or "none (single part)"
    if message.reference is not None:
        concat += f", reference {message.reference}"
    rows.append(("concat", concat))
    billing = _billing(profile, message)
    if billing is not None:
        rows.append(("billing", billing))
    rows.append(("parts", str(len(message.parts))))
    rows.append(("cost", f"{message.billed_parts} part{'s' if message.billed_parts != 1 else ''}"))
    for label, value in rows:
        out.write(f"{label:<12} {value}\n")
    total = len(message.parts)
    for seq, part in enumerate(message.parts, 1):
        where = "message_payload" if part.payload else "short_message"
        size = len(part.body) if part.payload else len(part.short_message)
        sar = ""
        if part.sar is not None:
            sar = f", sar ref={part.sar[0]} total={part.sar[1]} seq={part.sar[2]}"
        out.write(f"part {seq}/{total}  {part.units} {unit} in {size} octets of {where}{sar}\n")
        out.write(f"  udh  {part.udh.hex() or '-'}\n")
        out.write(f"  body {part.body.hex()}\n")
