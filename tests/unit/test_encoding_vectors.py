"""The providers' encoding vectors (tests/vectors/encoding.py), byte for byte, through the
core (segment.encode_message with the provider table's policy) and through `smppgw encode`."""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import pytest

from smppgw import encode_cmd
from smppgw.config import parse_text_settings
from smppgw.smpp.segment import encode_message
from smppgw.smpp.text import TextPolicy
from tests.vectors.encoding import ENCODING_VECTORS, EncodingVector

IDS = [v.name for v in ENCODING_VECTORS]


@pytest.mark.parametrize("vector", ENCODING_VECTORS, ids=IDS)
def test_core_encodes_the_vector(vector: EncodingVector) -> None:
    table = tomllib.loads("[[provider]]\n" + vector.provider)["provider"][0]
    profile, transliterate = parse_text_settings(table, "provider[0]")
    message = encode_message(
        vector.text,
        TextPolicy.from_profile(profile, transliterate=transliterate),
        flash=vector.flash,
        concat=vector.concat,  # type: ignore[arg-type]
        reference=vector.reference,
    )
    assert (message.data_coding, message.esm_class) == (vector.data_coding, vector.esm_class)
    assert [p.short_message for p in message.parts] == vector.short_messages
    assert message.billed_parts == len(vector.parts)


@pytest.mark.parametrize("vector", ENCODING_VECTORS, ids=IDS)
def test_encode_command_shows_the_vector(
    vector: EncodingVector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "provider.toml"
    path.write_text("[[provider]]\n" + vector.provider + "\n", encoding="utf-8")
    argv = ["--json", "--provider", str(path), "--reference", str(vector.reference)]
    argv += ["--flash"] * vector.flash + ([f"--{vector.concat}"] if vector.concat else [])
    parser = argparse.ArgumentParser()
    encode_cmd.add_arguments(parser)
    assert encode_cmd.run(parser.parse_args([*argv, vector.text])) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["data_coding"], result["esm_class"]) == (vector.data_coding, vector.esm_class)
    assert [bytes.fromhex(p["short_message"]) for p in result["parts"]] == vector.short_messages
    assert result["cost"] == len(vector.parts)
