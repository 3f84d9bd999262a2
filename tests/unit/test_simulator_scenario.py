"""The simulator's data: config validation, receipt and MO builders, `smppgw simulate` options.

No sockets and no event loop here; the server itself is tested in tests/integration.
"""

from __future__ import annotations

import argparse
import datetime
import random

import pytest

from smppgw import simulate_cmd
from smppgw.simulator import Account, Faults, ReceiptPlan, SimulatorConfig, parse_outcomes
from smppgw.simulator.receipts import (
    build_receipt,
    choose_outcome,
    mo_parts,
    outcome_of_key,
    receipt_stages,
)
from smppgw.smpp.codec import decode, encode
from smppgw.smpp.constants import MessageState, Tag
from smppgw.smpp.pdu import DataSm, SubmitSm, Tlv

WHEN = datetime.datetime(2025, 3, 4, 5, 6, tzinfo=datetime.UTC)


def test_account_password_is_not_in_repr() -> None:
    assert "secret" not in repr(Account("acme", "secret"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outcomes": {}},
        {"outcomes": {"DELIVRD": 0}},
        {"outcomes": {"DELIVRD": -1}},
        {"outcomes": {"REJECTD:abc": 1}},
        {"delay": -1},
        {"style": "acme"},
        {"routing": "random"},
    ],
)
def test_receipt_plan_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ReceiptPlan(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency": -0.1},
        {"throttle_above": 0},
        {"window": 0},
        {"drop_after": 0},
        {"idle_timeout": 0},
        {"throttle_scope": "planet"},
    ],
)
def test_faults_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Faults(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": 70000},
        {"cert_file": "a.pem"},
        {"id_format": "guid"},
        {"deliver_window": 0},
        {"smsc_system_id": "x" * 16},
        {"bind_kinds": frozenset({"outbind"})},
        {"enquire_link_interval": 0},
        {"enquire_link_interval": float("inf")},
        {"message_states_kept": 0},
    ],
)
def test_simulator_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(**kwargs)  # type: ignore[arg-type]


def test_presets_and_replace() -> None:
    wavy = SimulatorConfig.wavy(port=2444)
    assert (wavy.id_format, wavy.receipts.style, wavy.receipts.two_stage) == ("uuid", "wavy", True)
    assert wavy.port == 2444 and wavy.smsc_system_id == "MovileSMSC"
    qikberry = SimulatorConfig.qikberry()
    assert (qikberry.id_format, qikberry.receipts.routing) == ("hex", "other")
    assert SimulatorConfig().replace(seed=3).seed == 3


def test_plan_outcomes_are_frozen() -> None:
    source = {"DELIVRD": 1.0}
    plan = ReceiptPlan(outcomes=source)
    source["UNDELIV"] = 1.0
    assert dict(plan.outcomes) == {"DELIVRD": 1.0}
    with pytest.raises(TypeError):
        plan.outcomes["X"] = 1  # type: ignore[index]


def test_parse_outcomes() -> None:
    assert parse_outcomes("DELIVRD=0.9, undeliv=0.1") == {"DELIVRD": 0.9, "UNDELIV": 0.1}
    assert parse_outcomes("REJECTD:202=1") == {"REJECTD:202": 1.0}
    for bad in ("", "DELIVRD", "DELIVRD=x", "=1", "DELIVRD=0"):
        with pytest.raises(ValueError):
            parse_outcomes(bad)


# --- receipts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "style", "stat", "err", "state"),
    [
        ("DELIVRD", "standard", "DELIVRD", "000", MessageState.DELIVERED),
        ("UNDELIV", "wavy", "UNDELIV", "104", MessageState.UNDELIVERABLE),
        ("REJECTD:202", "wavy", "REJECTD", "202", MessageState.REJECTED),
        ("EXPIRED", "qikberry", "EXPIRED", "021", MessageState.EXPIRED),
        ("MOB-OFF", "qikberry", "MOB-OFF", "013", MessageState.UNDELIVERABLE),
        ("DNDNUMB", "qikberry", "DNDNUMB", "408", MessageState.REJECTED),
        ("UNDELIV:7", "standard", "UNDELIV", "007", MessageState.UNDELIVERABLE),
    ],
)
def test_outcome_keys(key: str, style: str, stat: str, err: str, state: MessageState) -> None:
    outcome = outcome_of_key(key, style)  # type: ignore[arg-type]
    assert (outcome.stat, outcome.err, outcome.state) == (stat, err, state)


def test_choose_outcome_follows_weights() -> None:
    plan = ReceiptPlan(outcomes={"DELIVRD": 9, "UNDELIV": 1})
    rng = random.Random(1)
    stats = [choose_outcome(plan, rng).stat for _ in range(1000)]
    assert 850 < stats.count("DELIVRD") < 950


def test_two_stage_only_for_messages_that_reached_the_carrier() -> None:
    wavy = ReceiptPlan(style="wavy", two_stage=True)
    delivered = outcome_of_key("DELIVRD", "wavy")
    assert [o.stat for o in receipt_stages(wavy, delivered)] == ["ACCEPTD", "DELIVRD"]
    rejected = outcome_of_key("REJECTD", "wavy")
    assert [o.stat for o in receipt_stages(wavy, rejected)] == ["REJECTD"]
    standard = ReceiptPlan(two_stage=True)
    assert [o.stat for o in receipt_stages(standard, delivered)] == ["ENROUTE", "DELIVRD"]
    assert receipt_stages(ReceiptPlan(), delivered) == (delivered,)


def test_receipt_text_and_addresses() -> None:
    submit = SubmitSm(
        source_addr_ton=5,
        source_addr="Acme",
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="5511999990001",
        esm_class=0x40,
        short_message=bytes((5, 0, 3, 1, 2, 1)) + b"Hello, this is a long first part",
    )
    receipt = build_receipt(
        submit,
        "abc123",
        outcome_of_key("DELIVRD", "standard"),
        "standard",
        submitted_at_wall=WHEN,
        done_at_wall=WHEN + datetime.timedelta(minutes=1),
    )
    assert receipt.short_message == (
        b"id:abc123 sub:001 dlvrd:001 submit date:2503040506 done date:2503040507 "
        b"stat:DELIVRD err:000 text:Hello, this is a lon"
    )
    assert (receipt.source_addr_ton, receipt.source_addr) == (1, "5511999990001")
    assert (receipt.dest_addr_ton, receipt.destination_addr) == (5, "Acme")
    assert decode(encode(receipt)) == receipt  # strictly encodable


def test_intermediate_receipt_and_ucs2_excerpt() -> None:
    submit = DataSm(
        source_addr="A",
        destination_addr="B",
        data_coding=8,
        tlvs=(Tlv(Tag.MESSAGE_PAYLOAD, "Olá 😀 mundo".encode("utf-16-be")),),
    )
    receipt = build_receipt(
        submit,
        "1",
        outcome_of_key("ENROUTE", "standard"),
        "standard",
        submitted_at_wall=WHEN,
        done_at_wall=WHEN,
    )
    assert receipt.esm_class == 0x20  # SMPP 3.4 §5.2.12 intermediate notification
    assert receipt.short_message.endswith(b"text:Ol? ? mundo")


def test_mo_single_part_and_encodings() -> None:
    (gsm,) = mo_parts("1", "2", "€ uro")
    assert gsm.short_message == b"\x1be uro"  # GSM 03.38 escape, unpacked
    (latin,) = mo_parts("1", "2", "ação", data_coding=3)
    assert latin.short_message == "ação".encode("latin-1")
    (raw,) = mo_parts("1", "2", b"\x01\x02", data_coding=4)
    assert raw.short_message == b"\x01\x02"
    with pytest.raises(ValueError):
        mo_parts("1", "2", "text", data_coding=4)


def test_mo_concatenation_never_cuts_a_gsm_escape() -> None:
    text = "a" * 152 + "€" + "b" * 10
    parts = mo_parts("1", "2", text, concatenated=True, reference=9)
    bodies = [p.short_message[6:] for p in parts]
    assert len(bodies[0]) == 152  # the escape pair moved whole to part 2
    assert bodies[1].startswith(b"\x1be")
    assert [p.short_message[:6] for p in parts] == [
        bytes((5, 0, 3, 9, 2, 1)),
        bytes((5, 0, 3, 9, 2, 2)),
    ]
    with pytest.raises(ValueError):
        mo_parts("1", "2", "x" * 600, concatenated=True, part_octets=2)


# --- smppgw simulate -------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    simulate_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:2775", ("127.0.0.1", 2775)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert simulate_cmd.parse_listen(value) == expected


@pytest.mark.parametrize("value", ["2775", ":2775", "host:port", "host:70000"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="--listen"):
        simulate_cmd.parse_listen(value)


def test_options_become_a_config() -> None:
    config = simulate_cmd.config_from_args(
        parse(
            "--listen",
            "127.0.0.1:0",
            "--tls",
            "--system-id",
            "acme",
            "--password",
            "pw",
            "--style",
            "wavy",
            "--receipt-delay",
            "0.5",
            "--outcomes",
            "DELIVRD=0.9,UNDELIV=0.1",
            "--latency",
            "0.1",
            "--throttle-above",
            "80",
            "--drop-after",
            "100",
            "--idle-timeout",
            "300",
            "--window",
            "10",
            "--queue-full-every",
            "50",
            "--enquire-link-every",
            "5",
            "--seed",
            "4",
        )
    )
    assert (config.host, config.port, config.tls) == ("127.0.0.1", 0, True)
    assert config.accounts == (Account("acme", "pw"),)
    assert config.id_format == "uuid" and config.smsc_system_id == "MovileSMSC"
    assert config.receipts == ReceiptPlan(
        style="wavy",
        delay=0.5,
        outcomes={"DELIVRD": 0.9, "UNDELIV": 0.1},
        two_stage=True,
        final_delay=2.0,
    )
    assert config.faults == Faults(
        latency=0.1,
        throttle_above=80,
        drop_after=100,
        idle_timeout=300,
        window=10,
        queue_full_every=50,
    )
    assert config.seed == 4 and config.record is False
    assert config.enquire_link_interval == 5.0


def test_style_defaults() -> None:
    qikberry = simulate_cmd.config_from_args(parse("--style", "qikberry"))
    assert qikberry.id_format == "hex" and qikberry.receipts.routing == "other"
    assert not qikberry.receipts.two_stage
    standard = simulate_cmd.config_from_args(parse("--id-format", "decimal", "--relay", "same"))
    assert standard.id_format == "decimal" and standard.receipts.routing == "same"
    assert standard.accounts == () and standard.host == "127.0.0.1"


@pytest.mark.parametrize(
    "argv",
    [
        ("--system-id", "acme"),
        ("--cert", "a.pem"),
        ("--outcomes", "DELIVRD=x"),
        ("--listen", "nope"),
    ],
)
def test_bad_options_exit_2(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert simulate_cmd.run(parse(*argv)) == 2
    assert capsys.readouterr().err.startswith("smppgw simulate: ")


@pytest.mark.parametrize("argv", [("--mo-every", "0"), ("--latency", "-1")])
def test_bad_durations_are_refused_by_argparse(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert f"argument {argv[0]}: must be" in capsys.readouterr().err
