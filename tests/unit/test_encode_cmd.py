"""`smppgw encode` (smppgw.encode_cmd): argument parsing, JSON and human output, exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from smppgw import encode_cmd


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smppgw encode")
    encode_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert encode_cmd.run(parse("--json", *argv)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    result: dict[str, Any] = json.loads(out)
    return result


def test_json_single_gsm7(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--provider", "wavy", "Hello")
    assert result["data_coding"] == 0
    assert result["esm_class"] == 0
    assert result["units"] == 5
    assert result["characters"] == 5
    assert result["cost"] == 1
    assert result["parts"] == [
        {
            "udh": "",
            "body": "48656c6c6f",
            "short_message": "48656c6c6f",
            "sar": None,
            "payload": False,
            "units": 5,
        }
    ]


def test_json_wavy_euro_is_ucs2_and_qikberry_euro_is_gsm7(
    capsys: pytest.CaptureFixture[str],
) -> None:
    wavy = run_json(capsys, "--provider", "wavy", "10€")
    assert (wavy["data_coding"], wavy["parts"][0]["body"]) == (8, "0031003020ac")
    qikberry = run_json(capsys, "--provider", "qikberry", "10€")
    assert (qikberry["data_coding"], qikberry["parts"][0]["body"]) == (0, "31301b65")
    assert qikberry["units"] == 4
    assert qikberry["characters"] == 3


def test_json_latin1_per_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--provider", "wavy", "ação")["data_coding"] == 1
    # Qikberry: Latin-1 (3) only when the provider opts in (seed 004): UCS-2 by default.
    assert run_json(capsys, "--provider", "qikberry", "ação")["data_coding"] == 8
    assert run_json(capsys, "--provider", "generic", "ação")["data_coding"] == 8


def test_why_names_the_character_that_forced_the_alphabet(
    capsys: pytest.CaptureFixture[str],
) -> None:
    euro = run_json(capsys, "--provider", "wavy", "10€")
    assert euro["why"] == (
        "'€' at position 2 is not in wavy's GSM table (no extension table) nor in Latin-1: UCS-2"
    )
    assert euro["forced_by"] == {"char": "€", "position": 2}
    assert [s["encoding"] for s in euro["skipped"]] == ["gsm7", "latin1"]
    accents = run_json(capsys, "--provider", "wavy", "ação 😀")
    assert accents["why"] == (
        "'ç' at position 1 is not in wavy's GSM table (no extension table) and '😀' at "
        "position 5 is not in Latin-1: UCS-2"
    )
    assert accents["forced_by"] == {"char": "😀", "position": 5}
    latin = run_json(capsys, "--provider", "wavy", "ação")
    assert latin["why"] == (
        "'ç' at position 1 is not in wavy's GSM table (no extension table): Latin-1"
    )
    qikberry = run_json(capsys, "--provider", "qikberry", "ação")
    assert qikberry["why"] == (
        "'ç' at position 1 is not in qikberry's GSM table and qikberry takes no Latin-1 "
        "(data_coding.latin1 is not set): UCS-2"
    )
    assert qikberry["forced_by"] == {"char": "ç", "position": 1}
    flash = run_json(capsys, "--provider", "wavy", "--flash", "ação")
    assert flash["why"].endswith("and flash has no Latin-1 data_coding: UCS-2")
    plain = run_json(capsys, "--provider", "wavy", "Hello")
    assert (plain["why"], plain["forced_by"], plain["skipped"]) == (None, None, [])
    forced = run_json(capsys, "--provider", "wavy", "--encoding", "ucs2", "Hello")
    assert (forced["why"], forced["forced_by"]) == ("forced with --encoding: UCS-2", None)


def test_human_output_says_why_and_how_wavy_bills(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("--provider", "wavy", "--reference", "7", "ã" * 125)) == 0
    out = capsys.readouterr().out
    assert "why          'ã' at position 0 is not in wavy's GSM table" in out
    assert (
        "billing      'ã' at position 0 is outside wavy's 160-character table: billed, and cut, "
        "per 70 characters (67 with UDH)"
    ) in out
    assert "cost         2 parts" in out
    assert "part 1/2  67 octets in 73 octets of short_message" in out
    assert "udh  050003070202" in out


def test_json_wavy_billing(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--provider", "wavy", "é" + "a" * 159)
    assert (result["data_coding"], result["cost"]) == (0, 3)
    assert [p["units"] for p in result["parts"]] == [67, 67, 26]
    assert result["billing"]["char"] == "é"
    assert result["billing"]["position"] == 0
    assert run_json(capsys, "--provider", "wavy", "a" * 160)["billing"] is None
    # Qikberry bills what each part carries.
    assert run_json(capsys, "--provider", "qikberry", "é" + "a" * 159)["cost"] == 1


def test_json_long_message_udh8(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--reference", "66", "a" * 161)
    assert result["esm_class"] == 0x40
    assert [p["udh"] for p in result["parts"]] == ["050003420201", "050003420202"]
    assert result["parts"][1]["body"] == "61" * 8
    assert result["cost"] == 2
    assert result["concat"] == "udh8"


def test_json_udh16_sar_payload(capsys: pytest.CaptureFixture[str]) -> None:
    udh16 = run_json(capsys, "--udh16", "--reference", "4660", "a" * 161)
    assert udh16["parts"][0]["udh"] == "06080412340201"
    sar = run_json(capsys, "--sar", "--reference", "5", "a" * 161)
    assert [p["sar"] for p in sar["parts"]] == [[5, 2, 1], [5, 2, 2]]
    assert sar["esm_class"] == 0
    payload = run_json(capsys, "--payload", "a" * 161)
    assert len(payload["parts"]) == 1
    assert payload["parts"][0]["payload"] is True
    assert payload["parts"][0]["short_message"] == ""
    assert payload["cost"] == 2


def test_json_flash(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--provider", "wavy", "--flash", "hi")["data_coding"] == 0x10
    assert run_json(capsys, "--provider", "wavy", "--flash", "ação")["data_coding"] == 0x18
    assert run_json(capsys, "--provider", "qikberry", "--flash", "€")["data_coding"] == 0x10


def test_json_transliterate_and_packed(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_json(capsys, "--provider", "wavy", "--transliterate", "ação")
    assert (result["data_coding"], result["text"], result["transliterated"]) == (0, "acao", True)
    packed = run_json(capsys, "--packed", "hellohello")
    assert packed["parts"][0]["body"] == "e8329bfd4697d9ec37"


def test_forced_encoding_error_names_character(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("--provider", "wavy", "--encoding", "gsm7", "ok €")) == 1
    err = capsys.readouterr().err
    assert "'€'" in err
    assert "position 3" in err


def test_too_many_parts(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("a" * (153 * 255 + 1))) == 1
    assert "256 parts" in capsys.readouterr().err


def test_a_text_over_max_parts_is_shown_and_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    """As the accept path: more parts than the provider's max_parts (default 10) cannot be
    sent; the parts are shown all the same, and the exit code says so."""
    assert encode_cmd.run(parse("--provider", "wavy", "a" * (153 * 10))) == 0
    capsys.readouterr()
    assert encode_cmd.run(parse("--provider", "wavy", "a" * (153 * 10 + 1))) == 1
    out, err = capsys.readouterr()
    assert "cost         11 parts" in out
    assert err == ("smppgw encode: the text needs 11 parts; provider wavy takes at most 10 per"
                   " message (max_parts)\n")
    config = tmp_path / "smppgw.toml"
    config.write_text('[[provider]]\nname = "wavy"\nprofile = "wavy"\nsystem_id = "acme"\n'
                      'password_env = "UNSET_PW"\nroutes = ["55"]\nmax_parts = 20\n')
    assert encode_cmd.run(parse("--provider", str(config), "--json",
                                "a" * (153 * 10 + 1))) == 0
    assert json.loads(capsys.readouterr().out)["max_parts"] == 20


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("--provider", "qikberry", "--reference", "1", "€" * 81)) == 0
    out = capsys.readouterr().out
    assert "data_coding  0 (0x00)" in out
    assert "esm_class    0x40 (UDHI)" in out
    assert "units        162 septets" in out
    assert "cost         2 parts" in out
    assert "udh  050003010201" in out
    # 76 euros = 152 septets: the 77th escape pair does not fit in 153 and moves on.
    assert "part 1/2  152 septets" in out


def test_unknown_provider(capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("--provider", "nope", "hi")) == 2
    assert "unknown provider 'nope'" in capsys.readouterr().err


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "smppgw.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_provider_file_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        """
[gateway]
state_dir = "/var/lib/smppgw"

[[provider]]
name = "wavy"
profile = "wavy"
gsm_extension = true
concat = "udh16"
data_coding = { latin1 = 3, flash_gsm7 = 0xF0 }

[[provider]]
name = "other"
profile = "qikberry"
""",
    )
    result = run_json(capsys, "--provider", path, "10€")
    assert (result["provider"], result["data_coding"]) == ("wavy", 0)
    assert run_json(capsys, "--provider", path, "ação")["data_coding"] == 3
    assert run_json(capsys, "--provider", path, "--flash", "hi")["data_coding"] == 0xF0
    assert run_json(capsys, "--provider", path, "a" * 161)["parts"][0]["udh"] == "06080400000201"
    other = run_json(capsys, "--provider", path, "--name", "other", "ação")
    assert (other["provider"], other["data_coding"]) == ("other", 8)


@pytest.mark.parametrize(
    ("data_coding", "text", "expected"),
    [
        # Every form check-config accepts: false = not offered.
        ("{ latin1 = false }", "ação", 8),
        ("{ latin1 = 3 }", "ação", 3),
        ("{ latin1 = 0x03, flash_ucs2 = false }", "ação", 3),
    ],
)
def test_provider_file_takes_every_data_coding_form(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data_coding: str,
    text: str,
    expected: int,
) -> None:
    for profile in ("wavy", "qikberry"):
        path = write(
            tmp_path, f'[[provider]]\nprofile = "{profile}"\ndata_coding = {data_coding}\n'
        )
        assert run_json(capsys, "--provider", path, text)["data_coding"] == expected


def test_provider_file_is_checked_like_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        '[[provider]]\nprofile = "qikberry"\n'
        "data_coding = { latin1 = 8 }\nmax_octets_per_part = 9\n",
    )
    assert encode_cmd.run(parse("--provider", path, "hi")) == 2
    err = capsys.readouterr().err
    assert f"{path}: provider[0].data_coding.latin1: 0x08 labels UCS-2, not Latin-1" in err
    assert f"{path}: provider[0].max_octets_per_part: must be between 16 and 254" in err


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[gateway]\n", "no [[provider]] table"),
        ('[[provider]]\nprofile = "nope"\n', 'provider[0].profile: must be one of "wavy"'),
        ('[[provider]]\nconcat = "udh9"\n', "provider[0].concat"),
        ("[[provider]]\ngsm_extension = 1\n", "provider[0].gsm_extension"),
        ("[[provider]]\ndata_coding = { latin2 = 3 }\n", "data_coding.latin2"),
        ('[[provider]]\ndata_coding = { ucs2 = "8" }\n', "data_coding.ucs2"),
        ("[[provider\n", "invalid TOML"),
    ],
)
def test_provider_file_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str
) -> None:
    path = write(tmp_path, body)
    assert encode_cmd.run(parse("--provider", path, "hi")) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("smppgw encode: ")


def test_missing_provider_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert encode_cmd.run(parse("--provider", str(tmp_path / "absent.toml"), "hi")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_only_one_concat_option() -> None:
    with pytest.raises(SystemExit):
        parse("--udh8", "--sar", "hi")
