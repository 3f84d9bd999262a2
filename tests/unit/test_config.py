"""smppgw.config and `smppgw check-config`: every rule reports its exact key path, all problems
come out in one run, and no secret ever reaches a repr, a message or the rendered config."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pytest

from smppgw import check_config_cmd, config
from smppgw.config import (
    BindTarget,
    Config,
    HostPort,
    Secret,
    format_problem,
    load_config,
    mask_url,
    parse_config,
    parse_host_port,
    render_config,
)
from smppgw.errors import ConfigError, Problem
from smppgw.net.certs import generate_ca_and_leaf
from smppgw.profiles import BUILTIN_PROFILES, QIKBERRY, WAVY, DataCodingMap, ProviderProfile

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "smppgw.example.toml"
EXAMPLE_ENV = {"WAVY_PASSWORD": "wavy-pw", "QIKBERRY_PASSWORD": "qik-pw"}
SECRET = "Zq9-UNIQUE-s3cret-7781"  # distinctive, so any leak is found by a plain search
# A provider password must fit a bind (SMPP 3.4 §4.1.1: 8 octets); as distinctive as can be.
PROVIDER_SECRET = "Zq9~7781"

GENERIC_PROVIDER = """
[[provider]]
name = "acme"
system_id = "acme"
password_env = "PW"
hosts = ["smsc.example.com:2775"]
routes = ["1"]
"""
ENV = {"PW": "pw"}


def parse(text: str, tmp_path: Path, environ: Mapping[str, str] | None = None) -> Config:
    return parse_config(tomllib.loads(text), base_dir=tmp_path, environ=ENV | dict(environ or {}))


def problems(text: str, tmp_path: Path, environ: Mapping[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path, environ)
    return info.value.problems


def only_problem(text: str, tmp_path: Path, environ: Mapping[str, str] | None = None) -> Problem:
    found = problems(text, tmp_path, environ)
    assert len(found) == 1, found
    return found[0]


def provider(extra: str = "", *, profile: str = "generic", name: str = "acme") -> str:
    """One [[provider]] table with everything required, plus `extra` lines."""
    lines = [
        "[[provider]]",
        f'name = "{name}"',
        f'profile = "{profile}"',
        'system_id = "acme"',
        'password_env = "PW"',
    ]
    if profile == "generic":
        lines.append('hosts = ["smsc.example.com:2775"]')
    lines.append('routes = ["1"]' if name == "acme" else f'routes = ["{len(name)}"]')
    return "\n".join(lines) + "\n" + extra + "\n"


# --------------------------------------------------------------------------- shipped files


def test_example_config_loads_without_problems() -> None:
    loaded = load_config(EXAMPLE, environ=EXAMPLE_ENV)
    assert loaded.warnings == ()
    assert [p.name for p in loaded.providers] == ["wavy", "qikberry"]
    wavy, qikberry = loaded.providers
    assert wavy.profile.system_type == "MovileSMSC"
    assert wavy.password.reveal() == "wavy-pw"
    assert len(wavy.bind_targets) == 4
    assert qikberry.password.reveal() == "qik-pw"
    assert qikberry.tlv_defaults == ((0x1400, b"1101234567890\x00"), (0x1402, b"1702345678901\x00"))
    assert [str(t) for t in qikberry.bind_targets] == ["smpp1.txtsms.me:3635"] * 3 + [
        "smpp2.txtsms.me:3635"
    ] * 3
    assert loaded.gateway.default_provider == "wavy"
    assert loaded.webhooks == ()


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    keys = (
        config._GATEWAY_KEYS
        + config._PROVIDER_KEYS
        + config._WEBHOOK_KEYS
        + config._DATA_CODING_KEYS
    )
    missing = [k for k in keys if not re.search(rf"^[#\s]*{k}\s*=|[{{,]\s*{k}\s*=", text, re.M)]
    assert missing == []


def test_example_webhook_block_loads_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    block = text[text.index("# [[webhook]]") :]
    webhook = "\n".join(
        line.removeprefix("# ")
        for line in block.splitlines()
        if line.startswith("# ") and not line.startswith("# # ")
    )
    (tmp_path / "webhook-password").write_text("pw\n")
    (tmp_path / "webhook-hmac").write_text("hmac\n")
    os.chmod(tmp_path / "webhook-password", 0o600)
    os.chmod(tmp_path / "webhook-hmac", 0o600)
    loaded = parse(GENERIC_PROVIDER + webhook, tmp_path)
    (hook,) = loaded.webhooks
    assert hook.auth == "basic"
    assert hook.password is not None and hook.password.reveal() == "pw"
    assert hook.hmac_secret is not None and hook.hmac_secret.reveal() == "hmac"


@pytest.mark.parametrize(
    ("name", "env"), [("wavy.toml", "WAVY_PASSWORD"), ("qikberry.toml", "QIKBERRY_PASSWORD")]
)
def test_provider_fragments_load_as_full_configs(name: str, env: str) -> None:
    loaded = load_config(REPO / "config" / name, environ={env: "x"})
    assert loaded.warnings == ()
    assert loaded.providers[0].profile.name == name.removesuffix(".toml")


# --------------------------------------------------------------------------- merging


def test_profile_defaults_and_overrides_merge(tmp_path: Path) -> None:
    loaded = parse(provider("window = 20\nenquire_link_interval = 45", profile="wavy"), tmp_path)
    merged = loaded.providers[0].profile
    assert isinstance(merged, ProviderProfile)
    assert merged == dataclasses.replace(WAVY, window=20, enquire_link_interval=45.0)
    assert merged.name == "wavy"
    assert loaded.providers[0].name == "acme"


def test_qikberry_profile_defaults(tmp_path: Path) -> None:
    merged = parse(provider(profile="qikberry"), tmp_path).providers[0].profile
    assert merged == QIKBERRY


def test_the_largest_submit_sm_defaults_by_profile_and_can_be_set(tmp_path: Path) -> None:
    """max_pdu_octets: 4096 for the built-in providers, SMPP 3.4's 64 KiB payload otherwise."""
    assert parse(provider(profile="wavy"), tmp_path).providers[0].profile.max_pdu_octets == 4096
    assert parse(provider(), tmp_path).providers[0].profile.max_pdu_octets == 0x10000 + 1024
    custom = parse(provider("max_pdu_octets = 2048", profile="qikberry"), tmp_path)
    assert custom.providers[0].profile.max_pdu_octets == 2048
    assert only_problem(provider("max_pdu_octets = 32"), tmp_path) == Problem(
        "provider[0].max_pdu_octets", "must be between 64 and 1048576")


def test_parts_per_message_are_limited_to_10_unless_set(tmp_path: Path) -> None:
    """max_parts: the most parts a message may have, Kannel's max-messages (10) by default."""
    for profile in ("generic", "wavy", "qikberry"):
        assert parse(provider(profile=profile), tmp_path).providers[0].profile.max_parts == 10
    assert parse(provider("max_parts = 255"), tmp_path).providers[0].profile.max_parts == 255
    for bad in ("0", "256"):
        assert only_problem(provider(f"max_parts = {bad}"), tmp_path) == Problem(
            "provider[0].max_parts", "must be between 1 and 255")


def test_cancel_sm_is_off_unless_set_and_warned_about_where_undocumented(
    tmp_path: Path,
) -> None:
    assert parse(provider(), tmp_path).providers[0].profile.cancel_sm is False
    generic = parse(provider("cancel_sm = true"), tmp_path)
    assert generic.providers[0].profile.cancel_sm is True and generic.warnings == ()
    wavy = parse(provider("cancel_sm = true", profile="wavy"), tmp_path)
    assert [(w.path, w.rule.split(":")[0]) for w in wavy.warnings if "cancel_sm" in w.path] == [
        ("provider[0].cancel_sm", "wavy's SMPP document does not mention cancel_sm")]


def test_data_coding_overrides_only_named_alphabets(tmp_path: Path) -> None:
    merged = parse(provider("data_coding = { latin1 = 3, flash_ucs2 = false }"), tmp_path)
    assert merged.providers[0].profile.data_coding == DataCodingMap(
        gsm7=0, latin1=3, ucs2=8, flash_gsm7=0x10, flash_ucs2=None
    )


@pytest.mark.parametrize(
    ("profile", "data_coding", "overrides"),
    [
        ("wavy", "{ latin1 = 1 }", {"latin1": 1}),
        ("qikberry", "{ latin1 = 3 }", {"latin1": 3}),
        ("qikberry", "{ gsm7 = 1 }", {"gsm7": 1}),
        ("generic", "{ gsm7 = 1, latin1 = 1 }", {"gsm7": 1, "latin1": 1}),
        ("generic", "{ gsm7 = 0xF0, flash_gsm7 = 0xF0 }", {"gsm7": 0xF0, "flash_gsm7": 0xF0}),
        ("wavy", "{ latin1 = false, flash_ucs2 = 0x18 }", {"latin1": None}),
    ],
)
def test_data_coding_values_that_label_their_alphabet(
    tmp_path: Path, profile: str, data_coding: str, overrides: dict[str, int | None]
) -> None:
    merged = parse(provider(f"data_coding = {data_coding}", profile=profile), tmp_path)
    base = BUILTIN_PROFILES[profile].data_coding
    assert merged.providers[0].profile.data_coding == dataclasses.replace(base, **overrides)


def test_qikberry_sends_latin1_only_when_told_so(tmp_path: Path) -> None:
    # Seed 004: data_coding 3 "if and only if told so explicitly".
    default = parse(provider(profile="qikberry"), tmp_path).providers[0].profile
    assert default.data_coding.latin1 is None
    opted = parse(provider("data_coding = { latin1 = 3 }", profile="qikberry"), tmp_path)
    assert opted.providers[0].profile.data_coding.latin1 == 3


def test_template_id_becomes_the_profile_template_tlv(tmp_path: Path) -> None:
    extra = 'template_id = "1107161234567890123"\ntlv_defaults = { 0x1400 = "11", 0x1402 = "17" }'
    loaded = parse(provider(extra, profile="qikberry"), tmp_path)
    (qikberry,) = loaded.providers
    assert qikberry.tlv_defaults == (
        (0x1400, b"11\x00"),
        (0x1402, b"17\x00"),
        (0x1401, b"1107161234567890123\x00"),
    )
    assert qikberry.default_tlv(0x1401) == b"1107161234567890123\x00"
    assert qikberry.default_tlv(0x1403) is None
    # Rendered as the TLV default it is, so the output loads back to the same config.
    rendered = tomllib.loads(render_config(loaded))["provider"][0]
    assert rendered["tlv_defaults"]["0x1401"] == "1107161234567890123"
    assert "template_id" not in rendered


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ('routes = ["91"]', "0x1400 (PE_ID, the DLT entity id) and 0x1402"),
        ('routes = ["9"]', "0x1400"),  # 9 covers +91
        ('routes = ["9198"]\ntlv_defaults = { 0x1400 = "1" }', "no default for 0x1402 ("),
        ("", "0x1400"),  # no routes: messages naming it may go to India
    ],
)
def test_qikberry_without_dlt_defaults_warns(tmp_path: Path, extra: str, missing: str) -> None:
    text = provider(extra, profile="qikberry").replace('routes = ["1"]\n', "")
    loaded = parse(text, tmp_path)
    dlt = [w for w in loaded.warnings if w.path == "provider[0].tlv_defaults"]
    assert len(dlt) == 1, loaded.warnings
    assert missing in dlt[0].rule
    assert "India's DLT rules require them on every message" in dlt[0].rule


def test_qikberry_dlt_warning_only_where_india_can_be_reached(tmp_path: Path) -> None:
    outside_india = parse(provider('routes = ["44"]', profile="qikberry")
                          .replace('routes = ["1"]\n', ""), tmp_path)  # fmt: skip
    assert outside_india.warnings == ()
    complete = 'routes = ["91"]\ntlv_defaults = { 0x1400 = "11", 0x1402 = "17" }'
    assert parse(provider(complete, profile="qikberry").replace('routes = ["1"]\n', ""),
                 tmp_path).warnings == ()  # fmt: skip
    # The default provider gets whatever matches no route, India included.
    as_default = parse(
        '[gateway]\ndefault_provider = "acme"\n' + provider('routes = ["44"]', profile="qikberry")
        .replace('routes = ["1"]\n', ""),
        tmp_path,
    )  # fmt: skip
    assert [w.path for w in as_default.warnings] == ["provider[0].tlv_defaults"]
    # Other profiles carry no DLT TLVs.
    assert parse(provider('routes = ["91"]', profile="wavy").replace('routes = ["1"]\n', ""),
                 tmp_path).warnings == ()  # fmt: skip


def test_rate_zero_lifts_the_profile_limit(tmp_path: Path) -> None:
    merged = parse(provider("rate_per_bind = 0", profile="wavy"), tmp_path).providers[0].profile
    assert merged.rate_per_bind is None


def test_account_settings_defaults(tmp_path: Path) -> None:
    (acme,) = parse(GENERIC_PROVIDER, tmp_path).providers
    assert acme.tls_verify is True
    assert acme.connect_timeout == 10.0
    assert acme.bind_timeout == 10.0
    assert acme.failover is None and acme.failover_after == 60.0
    assert acme.transliterate is False
    assert acme.receipt_id_base == "same"
    assert acme.sender_as_system_id is False


def test_gateway_defaults(tmp_path: Path) -> None:
    gateway = parse(GENERIC_PROVIDER, tmp_path).gateway
    assert gateway.state_dir == Path("/var/lib/smppgw")
    assert gateway.submit_socket == Path("/run/smppgw/submit.sock")
    assert gateway.socket_mode == 0o660
    assert gateway.metrics_listen == HostPort("127.0.0.1", 9465)
    assert gateway.api_listen is None and gateway.api_token is None
    assert gateway.max_body_bytes == 1024 * 1024
    assert gateway.sender_policy == "error"
    assert gateway.log_level == "info"


def test_gateway_values_and_relative_paths(tmp_path: Path) -> None:
    text = """
[gateway]
state_dir = "state"
socket_mode = "0600"
metrics_listen = ""
log_level = "debug"
sender_policy = "warn"
default_provider = "acme"
"""
    gateway = parse(text + GENERIC_PROVIDER, tmp_path).gateway
    assert gateway.state_dir == tmp_path / "state"
    assert gateway.socket_mode == 0o600
    assert gateway.metrics_listen is None
    assert gateway.log_level == "debug"
    assert gateway.sender_policy == "warn"


def test_spread_bind_targets_round_robin_over_hosts(tmp_path: Path) -> None:
    text = provider("binds = 3").replace(
        'hosts = ["smsc.example.com:2775"]', 'hosts = ["a.example:1", "[::1]:2775"]'
    )
    targets = parse(text, tmp_path).providers[0].bind_targets
    assert targets == (
        BindTarget("a.example", 1, 0, "transceiver", True),
        BindTarget("::1", 2775, 1, "transceiver", True),
        BindTarget("a.example", 1, 2, "transceiver", True),
    )
    assert str(targets[1]) == "[::1]:2775"


def test_binds_per_host_multiplies_over_hosts(tmp_path: Path) -> None:
    text = provider("binds_per_host = 2").replace(
        'hosts = ["smsc.example.com:2775"]', 'hosts = ["a.example:1", "b.example:1"]'
    )
    (acme,) = parse(text, tmp_path).providers
    assert acme.profile.binds == 4 and acme.profile.binds_per_host == 2
    assert [(t.host, t.index) for t in acme.bind_targets] == [
        ("a.example", 0),
        ("a.example", 1),
        ("b.example", 2),
        ("b.example", 3),
    ]


def test_explicit_binds_replace_the_profiles_per_host_count(tmp_path: Path) -> None:
    (qik,) = parse(provider("binds = 2", profile="qikberry"), tmp_path).providers
    assert qik.profile.binds == 2 and qik.profile.binds_per_host is None
    assert [t.host for t in qik.bind_targets] == ["smpp1.txtsms.me", "smpp2.txtsms.me"]


def test_fewer_binds_than_hosts_warns(tmp_path: Path) -> None:
    loaded = parse(provider("binds = 1", profile="qikberry"), tmp_path)
    assert [w.path for w in loaded.warnings] == ["provider[0].binds"]
    assert "smpp2.txtsms.me:3635 get no bind" in loaded.warnings[0].rule


def test_tlv_defaults_are_normalised(tmp_path: Path) -> None:
    text = provider('tlv_defaults = { 0x1400 = "11", 5121 = "22", "0x1402" = { hex = "00ff" } }')
    (acme,) = parse(text, tmp_path).providers
    assert acme.tlv_defaults == ((0x1400, b"11\x00"), (0x1401, b"22\x00"), (0x1402, b"\x00\xff"))


def test_config_provider_lookup(tmp_path: Path) -> None:
    loaded = parse(GENERIC_PROVIDER, tmp_path)
    assert loaded.provider("acme") is loaded.providers[0]
    with pytest.raises(KeyError):
        loaded.provider("nope")
    # CPython 3.11 raises TypeError instead of FrozenInstanceError for frozen slotted classes.
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError)):
        loaded.providers[0].name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- one rule each

RULES = [
    # (extra provider lines, profile, key path, words the rule must say)
    ("windw = 5", "generic", "provider[0].windw", 'unknown key (did you mean "window"?)'),
    ('window = "10"', "generic", "provider[0].window", "expected an integer, got a string"),
    ("window = 0", "generic", "provider[0].window", "must be at least 1"),
    ("tls = 1", "generic", "provider[0].tls", "expected a boolean"),
    (
        "enquire_link_interval = 60",
        "wavy",
        "provider[0].enquire_link_interval",
        'must be between 30 and 59 seconds for profile "wavy" (got 60)',
    ),
    ("binds = 2", "wavy", "provider[0].binds", 'at least 4 binds for profile "wavy" (got 2)'),
    (
        "binds_per_host = 2",
        "wavy",
        "provider[0].binds_per_host",
        'at least 4 binds for profile "wavy" (got 2 binds over 1 hosts)',
    ),
    (
        "binds = 6\nbinds_per_host = 3",
        "qikberry",
        "provider[0].binds_per_host",
        "set binds or binds_per_host, not both",
    ),
    (
        'bind_type = "trx"',
        "generic",
        "provider[0].bind_type",
        'must be one of "transceiver", "transmitter", "receiver"; got "trx"',
    ),
    (
        'receipt_id_base = "octal"',
        "generic",
        "provider[0].receipt_id_base",
        'must be one of "same", "hex", "decimal"',
    ),
    ("interface_version = 0x50", "generic", "provider[0].interface_version", "0x34 (SMPP 3.4)"),
    ("default_ton = 9", "generic", "provider[0].default_ton", "SMPP 3.4 §5.2.5"),
    ("default_npi = 2", "generic", "provider[0].default_npi", "SMPP 3.4 §5.2.6"),
    ("response_timeout = 0", "generic", "provider[0].response_timeout", "greater than 0"),
    ("connect_timeout = -1", "generic", "provider[0].connect_timeout", "greater than 0"),
    ("registered_delivery = 64", "generic", "provider[0].registered_delivery", "between 0 and 31"),
    ("rate_per_host = -5", "generic", "provider[0].rate_per_host", "must be at least 0"),
    ("validity_minutes = -1", "generic", "provider[0].validity_minutes", "must be at least 0"),
    ("response_timeout = inf", "generic", "provider[0].response_timeout", "finite"),
    ("data_coding = { ucs2 = 300 }", "generic", "provider[0].data_coding.ucs2", "0 and 255"),
    (
        "data_coding = { gsm7 = false }",
        "generic",
        "provider[0].data_coding.gsm7",
        "expected an integer, got a boolean",
    ),
    ("data_coding = { utf8 = 4 }", "generic", "provider[0].data_coding.utf8", "unknown key"),
    ('tls_min_version = "1.4"', "generic", "provider[0].tls_min_version", "must be one of"),
    ('tls_pin_sha256 = "abc"', "generic", "provider[0].tls_pin_sha256", "64 hex digits"),
    ('system_type = "much-too-long-type"', "generic", "provider[0].system_type", "longer than 12"),
    ('ca_file = "missing.pem"', "generic", "provider[0].ca_file", "no such file: "),
    ('client_cert = "/nonexistent/c.pem"', "generic", "provider[0].client_cert", "no such file"),
    ('failover = "acme"', "generic", "provider[0].failover", "cannot fail over to itself"),
    ('failover = "acmee"', "generic", "provider[0].failover", 'unknown provider "acmee"'),
    ('tlv_defaults = { tag = "1" }', "generic", "provider[0].tlv_defaults.tag", "TLV tag"),
    (
        'tlv_defaults = { 0x020C = "1" }',
        "generic",
        "provider[0].tlv_defaults.0x020C",
        "per message",
    ),
    (
        'tlv_defaults = { 0x1400 = "1", 5120 = "2" }',
        "generic",
        "provider[0].tlv_defaults.5120",
        "same tag as provider[0].tlv_defaults.0x1400",
    ),
    (
        'tlv_defaults = { 0x1400 = { hex = "zz" } }',
        "generic",
        "provider[0].tlv_defaults.0x1400.hex",
        "hex digits",
    ),
    (
        "tlv_defaults = { 0x1400 = 5 }",
        "generic",
        "provider[0].tlv_defaults.0x1400",
        'expected a string or { hex = "..." }, got an integer',
    ),
    ('tlv_defaults = { 0x1400 = "é" }', "generic", "provider[0].tlv_defaults.0x1400", "ASCII"),
]


# data_coding values must label their own alphabet (SMPP 3.4 §5.2.19, 3GPP TS 23.038 §4).
RULES += [
    (
        "data_coding = { latin1 = 8 }",
        "generic",
        "provider[0].data_coding.latin1",
        "0x08 labels UCS-2, not Latin-1 (SMPP 3.4 §5.2.19, 3GPP TS 23.038 §4): handsets would "
        "show the wrong characters; use 3 or 1 or false (not offered)",
    ),
    ("data_coding = { gsm7 = 8 }", "generic", "provider[0].data_coding.gsm7", "labels UCS-2"),
    ("data_coding = { ucs2 = 3 }", "wavy", "provider[0].data_coding.ucs2", "use 8"),
    ("data_coding = { ucs2 = 1 }", "generic", "provider[0].data_coding.ucs2", "labels IA5"),
    ("data_coding = { latin1 = 4 }", "generic", "provider[0].data_coding.latin1", "binary"),
    ("data_coding = { latin1 = 6 }", "generic", "provider[0].data_coding.latin1", "another"),
    ("data_coding = { gsm7 = 0x30 }", "generic", "provider[0].data_coding.gsm7", "compressed"),
    # IA5 is GSM 03.38 on Qikberry (seed 004) and Latin-1 on Wavy (seed 003).
    (
        "data_coding = { latin1 = 1 }",
        "qikberry",
        "provider[0].data_coding.latin1",
        'labels IA5, which profile "qikberry" reads as GSM 7-bit, not Latin-1',
    ),
    (
        "data_coding = { gsm7 = 1 }",
        "wavy",
        "provider[0].data_coding.gsm7",
        'labels IA5, which profile "wavy" reads as Latin-1, not GSM 7-bit',
    ),
    (
        "data_coding = { flash_ucs2 = 0x10 }",
        "generic",
        "provider[0].data_coding.flash_ucs2",
        "labels GSM 7-bit, not UCS-2",
    ),
    (
        "data_coding = { flash_gsm7 = 0 }",
        "wavy",
        "provider[0].data_coding.flash_gsm7",
        "sets no message class 0 (3GPP TS 23.038 §4), so flash messages would go out as normal "
        "ones; use 0x10 or 0xF0 or false (not offered)",
    ),
    ("data_coding = { flash_ucs2 = 0x19 }", "wavy", "provider[0].data_coding.flash_ucs2", "class"),
    (
        'template_id = "1107161234567890123"',
        "generic",
        "provider[0].template_id",
        'profile "generic" has no DLT template TLV; set the tag in tlv_defaults',
    ),
    (
        'template_id = "1107"\ntlv_defaults = { 0x1400 = "1", 0x1401 = "2", 0x1402 = "3" }',
        "qikberry",
        "provider[0].template_id",
        "set template_id or tlv_defaults.0x1401, not both",
    ),
    ('template_id = "é"', "qikberry", "provider[0].template_id", "printable ASCII"),
    ('template_id = ""', "qikberry", "provider[0].template_id", "must not be empty"),
]


@pytest.mark.parametrize(("extra", "profile", "path", "rule"), RULES, ids=[r[2] for r in RULES])
def test_provider_rule(extra: str, profile: str, path: str, rule: str, tmp_path: Path) -> None:
    problem = only_problem(provider(extra, profile=profile), tmp_path)
    assert problem.path == path
    assert rule in problem.rule


def test_unknown_top_level_table_suggests(tmp_path: Path) -> None:
    problem = only_problem("[gatway]\n" + GENERIC_PROVIDER, tmp_path)
    assert problem == Problem("gatway", 'unknown key (did you mean "gateway"?)')


def test_provider_as_plain_table_is_wrong_type(tmp_path: Path) -> None:
    problem = only_problem('[provider]\nname = "x"\n', tmp_path)
    assert problem.path == "provider"
    assert "expected an array of tables ([[provider]]), got a table" in problem.rule


def test_no_provider_at_all(tmp_path: Path) -> None:
    problem = only_problem("[gateway]\n", tmp_path)
    assert problem.path == "provider"
    assert "at least one [[provider]]" in problem.rule


def test_missing_required_keys(tmp_path: Path) -> None:
    found = problems('[[provider]]\nhosts = ["h:1"]\nroutes = ["1"]\n', tmp_path)
    assert [(p.path, p.rule.split(":")[0]) for p in found] == [
        ("provider[0].name", "missing required key"),
        ("provider[0].system_id", "missing required key"),
        ("provider[0].password", "missing required key"),
    ]


def test_generic_profile_needs_hosts(tmp_path: Path) -> None:
    text = provider().replace('hosts = ["smsc.example.com:2775"]\n', "")
    problem = only_problem(text, tmp_path)
    assert problem.path == "provider[0].hosts"
    assert 'profile "generic" has no default hosts' in problem.rule


def test_unknown_profile(tmp_path: Path) -> None:
    problem = only_problem(provider(profile="wavvy"), tmp_path)
    assert problem.path == "provider[0].profile"
    assert '(did you mean "wavy"?)' in problem.rule


def test_bad_provider_name(tmp_path: Path) -> None:
    problem = only_problem(provider(name="Acme Corp"), tmp_path)
    assert problem.path == "provider[0].name"
    assert "[a-z0-9_-]+" in problem.rule


def test_duplicate_provider_names(tmp_path: Path) -> None:
    text = provider() + provider().replace('routes = ["1"]', 'routes = ["2"]')
    problem = only_problem(text, tmp_path)
    assert problem == Problem(
        "provider[1].name", 'duplicate provider name "acme" (also provider[0])'
    )


def test_route_shared_by_two_providers_is_an_error(tmp_path: Path) -> None:
    text = provider() + provider(name="other").replace('routes = ["5"]', 'routes = ["9", "1"]')
    problem = only_problem(text, tmp_path)
    assert problem.path == "provider[1].routes[1]"
    assert problem.rule.startswith(
        'route "1" is already served by provider "acme" (provider[0].routes[0])'
    )


def test_route_shared_with_the_failover_is_allowed(tmp_path: Path) -> None:
    text = provider('failover = "other"') + provider(name="other").replace(
        'routes = ["5"]', 'routes = ["1"]'
    )
    loaded = parse(text, tmp_path)
    assert loaded.providers[0].failover == "other"
    assert loaded.providers[1].routes == ("1",)


def test_route_shared_with_a_primary_listed_later_is_an_error(tmp_path: Path) -> None:
    text = provider() + provider('failover = "acme"', name="other").replace(
        'routes = ["5"]', 'routes = ["1"]'
    )
    problem = only_problem(text, tmp_path)
    assert problem.path == "provider[1].routes[0]"
    assert "only the failover of the provider listed first may share its route" in problem.rule


def test_route_must_be_digits(tmp_path: Path) -> None:
    text = provider().replace('routes = ["1"]', 'routes = ["1", "2", "+55"]')
    problem = only_problem(text, tmp_path)
    assert problem.path == "provider[0].routes[2]"
    assert "1-20 digits" in problem.rule and '"+55"' in problem.rule


def test_route_listed_twice(tmp_path: Path) -> None:
    text = provider().replace('routes = ["1"]', 'routes = ["1", "1"]')
    assert only_problem(text, tmp_path) == Problem(
        "provider[0].routes[1]", "listed twice (also provider[0].routes[0])"
    )


def test_provider_without_routes_warns(tmp_path: Path) -> None:
    loaded = parse(provider().replace('routes = ["1"]', ""), tmp_path)
    assert [w.path for w in loaded.warnings] == ["provider[0].routes"]


def test_default_provider_must_exist(tmp_path: Path) -> None:
    problem = only_problem('[gateway]\ndefault_provider = "acm"\n' + GENERIC_PROVIDER, tmp_path)
    assert problem == Problem(
        "gateway.default_provider", 'unknown provider "acm" (did you mean "acme"?)'
    )


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("socket_mode = 660", 'must be an octal string such as "0660", not an integer'),
        ('socket_mode = "rw-rw----"', 'must be an octal string such as "0660"'),
        ('metrics_listen = "9465"', 'expected "host:port"'),
        ('log_level = "verbose"', 'must be one of "debug"'),
        ('sender_policy = "ignore"', 'must be one of "error", "warn"'),
        ("max_body_bytes = 10", "must be at least 1024"),
        ('submit_socket = "/' + "x" * 120 + '"', "unix socket path"),
        ('api_listen = "127.0.0.1:8080"', "needs a bearer token"),
    ],
)
def test_gateway_rule(line: str, rule: str, tmp_path: Path) -> None:
    problem = only_problem(f"[gateway]\n{line}\n" + GENERIC_PROVIDER, tmp_path)
    key = line.split(" ")[0]
    assert problem.path == ("gateway.api_token_file" if key == "api_listen" else f"gateway.{key}")
    assert rule in problem.rule


def test_api_listen_with_token(tmp_path: Path) -> None:
    text = '[gateway]\napi_listen = "[::1]:8080"\napi_token_env = "TOKEN"\n' + GENERIC_PROVIDER
    gateway = parse(text, tmp_path, {"TOKEN": SECRET}).gateway
    assert gateway.api_listen == HostPort("::1", 8080)
    assert gateway.api_token is not None and gateway.api_token.reveal() == SECRET


def test_api_token_without_api_listen_warns(tmp_path: Path) -> None:
    loaded = parse('[gateway]\napi_token_env = "UNSET"\n' + GENERIC_PROVIDER, tmp_path)
    assert loaded.warnings == (
        Problem("gateway.api_token_env", "ignored because api_listen is not set"),
    )


def test_world_writable_socket_warns(tmp_path: Path) -> None:
    loaded = parse('[gateway]\nsocket_mode = "0666"\n' + GENERIC_PROVIDER, tmp_path)
    assert [w.path for w in loaded.warnings] == ["gateway.socket_mode"]


# --------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smsc.example.com:2775", HostPort("smsc.example.com", 2775)),
        ("10.0.0.1:2775", HostPort("10.0.0.1", 2775)),
        ("[::1]:2775", HostPort("::1", 2775)),
        ("[2001:db8::1]:1", HostPort("2001:db8::1", 1)),
    ],
)
def test_parse_host_port(text: str, expected: HostPort) -> None:
    assert parse_host_port(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("smsc.example.com", 'expected "host:port"'),
        ("::1:2775", "IPv6 addresses go in brackets"),
        ("[::1]2775", 'expected "[address]:port"'),
        ("[not-v6]:2775", "is not an IPv6 address"),
        (":2775", "missing host"),
        ("smsc example:2775", "is not a host name"),
        ("smsc:0", "port must be a number from 1 to 65535"),
        ("smsc:70000", "port must be a number from 1 to 65535"),
        ("smsc:http", "port must be a number"),
    ],
)
def test_hosts_not_host_port(text: str, rule: str, tmp_path: Path) -> None:
    config_text = provider().replace(
        'hosts = ["smsc.example.com:2775"]', f'hosts = ["a.example:1", "{text}"]'
    )
    problem = only_problem(config_text, tmp_path)
    assert problem.path == "provider[0].hosts[1]"
    assert rule in problem.rule


def test_duplicate_and_empty_hosts(tmp_path: Path) -> None:
    dup = provider().replace('hosts = ["smsc.example.com:2775"]', 'hosts = ["a:1", "a:1"]')
    assert only_problem(dup, tmp_path) == Problem(
        "provider[0].hosts[1]", "duplicate host (also provider[0].hosts[0])"
    )
    empty = provider().replace('hosts = ["smsc.example.com:2775"]', "hosts = []")
    assert only_problem(empty, tmp_path) == Problem(
        "provider[0].hosts", "must list at least one host"
    )


def test_wavy_by_ip_warns_but_local_proxy_does_not(tmp_path: Path) -> None:
    by_ip = parse(provider('hosts = ["203.0.113.5:2444"]', profile="wavy"), tmp_path)
    assert [w.path for w in by_ip.warnings] == ["provider[0].hosts[0]"]
    proxied = parse(provider('hosts = ["127.0.0.1:2444"]\ntls = false', profile="wavy"), tmp_path)
    assert proxied.warnings == ()


# --------------------------------------------------------------------------- TLS


def test_tls_verify_false_is_a_warning(tmp_path: Path) -> None:
    loaded = parse(provider("tls_verify = false"), tmp_path)
    assert loaded.providers[0].tls_verify is False
    (warning,) = loaded.warnings
    assert warning.path == "provider[0].tls_verify"
    assert "certificate verification is off" in warning.rule


def test_plain_smpp_warns_and_ignores_tls_keys(tmp_path: Path) -> None:
    loaded = parse(provider('tls = false\ntls_min_version = "1.3"'), tmp_path)
    assert [w.path for w in loaded.warnings] == ["provider[0].tls", "provider[0].tls_min_version"]
    assert "unencrypted" in loaded.warnings[0].rule
    assert loaded.warnings[1].rule == "ignored because tls = false"


def test_tls_files_and_pin(tmp_path: Path) -> None:
    chain = generate_ca_and_leaf(tmp_path, days=2)
    pin = "AB:" * 31 + "AB"
    extra = (f'ca_file = "{chain.ca.name}"\nclient_cert = "{chain.cert.name}"\n'
             f'client_key = "{chain.key.name}"\ntls_pin_sha256 = "{pin}"')
    (acme,) = parse(provider(extra), tmp_path).providers
    assert acme.ca_file == chain.ca
    assert acme.client_cert == chain.cert
    assert acme.client_key == chain.key
    assert acme.tls_pin_sha256 == bytes([0xAB]) * 32


def test_client_key_needs_client_cert(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("key")
    problem = only_problem(provider('client_key = "k.pem"'), tmp_path)
    assert problem == Problem("provider[0].client_key", "needs client_cert")


def test_tls_min_version_is_1_2_for_every_profile(tmp_path: Path) -> None:
    for profile in ("generic", "wavy", "qikberry"):
        (loaded,) = parse(provider(profile=profile), tmp_path).providers
        assert loaded.profile.tls_min_version == "1.2", profile


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_a_tls_version_below_1_2_is_an_explicit_opt_in_with_a_warning(
    tmp_path: Path, version: str
) -> None:
    loaded = parse(provider(f'tls_min_version = "{version}"', profile="qikberry"), tmp_path)
    assert loaded.providers[0].profile.tls_min_version == version
    (warning,) = [w for w in loaded.warnings if w.path == "provider[0].tls_min_version"]
    assert "lowers OpenSSL's security level to 0" in warning.rule


def test_tls_files_that_are_not_pem_are_refused_by_key(tmp_path: Path) -> None:
    chain = generate_ca_and_leaf(tmp_path / "chain", days=2)
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    problem = only_problem(provider('ca_file = "ca.pem"'), tmp_path)
    assert problem.path == "provider[0].ca_file"
    assert problem.rule.startswith(f"{tmp_path / 'ca.pem'} is not a PEM certificate bundle")
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n")
    problem = only_problem(provider('client_cert = "cert.pem"'), tmp_path)
    assert problem == Problem("provider[0].client_cert",
                              f"{tmp_path / 'cert.pem'} holds no PEM certificate")
    # A certificate file without its key, and no client_key: the certificate file is blamed.
    problem = only_problem(provider(f'client_cert = "{chain.cert}"'), tmp_path)
    assert problem == Problem("provider[0].client_cert", f"{chain.cert} holds no PEM private key")
    # The key of another certificate (the CA's).
    assert chain.ca_key is not None
    problem = only_problem(
        provider(f'client_cert = "{chain.cert}"\nclient_key = "{chain.ca_key}"'), tmp_path)
    assert problem.path == "provider[0].client_key"
    assert problem.rule.startswith(f"{chain.ca_key} is not the key of client_cert {chain.cert}")


def test_a_secret_key_file_is_never_quoted(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n")
    chain = generate_ca_and_leaf(tmp_path / "chain", days=2)
    problem = only_problem(
        provider(f'client_cert = "{chain.cert}"\nclient_key = "key.pem"'), tmp_path)
    assert problem == Problem("provider[0].client_key",
                              f"{tmp_path / 'key.pem'} holds no PEM private key")


def test_an_encrypted_client_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    chain = generate_ca_and_leaf(tmp_path / "chain", days=2)
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "enc.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    problem = only_problem(
        provider(f'client_cert = "{chain.cert}"\nclient_key = "enc.pem"'), tmp_path)
    assert problem.path == "provider[0].client_key"
    assert "encrypted private key" in problem.rule


def test_a_ca_file_with_verification_off_is_refused(tmp_path: Path) -> None:
    """The context could not use both: every bind would fail to be built."""
    chain = generate_ca_and_leaf(tmp_path, days=2)
    found = problems(provider(f'tls_verify = false\nca_file = "{chain.ca}"'), tmp_path)
    assert [p.path for p in found] == ["provider[0].ca_file"]
    assert "not used while tls_verify = false" in found[0].rule


# --------------------------------------------------------------------------- bind kinds


def hosts_line(*hosts: str) -> str:
    return "hosts = [" + ", ".join(f'"{h}"' for h in hosts) + "]"


def no_routes(text: str) -> str:
    return re.sub(r"routes = \[.*\]\n", "", text)


def with_hosts(text: str, *hosts: str) -> str:
    return text.replace('hosts = ["smsc.example.com:2775"]', hosts_line(*hosts))


def test_transmitters_and_receivers_spread_over_the_hosts(tmp_path: Path) -> None:
    text = with_hosts(provider("transmitters = 3\nreceivers = 2"), "a.example:1", "b.example:1")
    (acme,) = parse(text, tmp_path).providers
    assert [(t.index, t.kind, t.host) for t in acme.bind_targets] == [
        (0, "transmitter", "a.example"), (1, "transmitter", "b.example"),
        (2, "transmitter", "a.example"), (3, "receiver", "a.example"),
        (4, "receiver", "b.example")]
    assert acme.bind_counts == (("transmitters", 3), ("receivers", 2))
    assert acme.can_submit
    rendered = render_config(parse(text, tmp_path))
    assert "transmitters = 3\nreceivers = 2" in rendered
    assert "bind_type" not in rendered
    assert "#   acme#4 receiver tls://b.example:1" in rendered


def test_per_host_transmitters_and_receivers(tmp_path: Path) -> None:
    text = provider("transmitters_per_host = 2\nreceivers_per_host = 1", profile="qikberry")
    (qik,) = parse(text, tmp_path).providers
    assert [(t.index, t.kind, t.host) for t in qik.bind_targets] == [
        (0, "transmitter", "smpp1.txtsms.me"), (1, "transmitter", "smpp1.txtsms.me"),
        (2, "transmitter", "smpp2.txtsms.me"), (3, "transmitter", "smpp2.txtsms.me"),
        (4, "receiver", "smpp1.txtsms.me"), (5, "receiver", "smpp2.txtsms.me")]


def test_transmitters_alone_warn_when_receipts_have_no_receiver(tmp_path: Path) -> None:
    loaded = parse(provider("transmitters = 2"), tmp_path)
    assert [t.kind for t in loaded.providers[0].bind_targets] == ["transmitter"] * 2
    (warning,) = loaded.warnings
    assert warning.path == "provider[0].transmitters"
    assert "no bind of this account can receive them" in warning.rule
    assert parse(provider("transmitters = 2\nregistered_delivery = 0"), tmp_path).warnings == ()


@pytest.mark.parametrize(("extra", "path", "rule"), [
    ("binds = 2\ntransmitters = 1", "provider[0].binds",
     "set binds or transmitters, not both"),
    ('bind_type = "receiver"\nreceivers = 1', "provider[0].bind_type",
     "set bind_type or receivers, not both"),
    ("transmitters = 1\ntransmitters_per_host = 1", "provider[0].transmitters_per_host",
     "set transmitters or transmitters_per_host, not both"),
    ("transmitters = 0\nreceivers = 0", "provider[0].transmitters",
     "must give at least one bind"),
    ("receivers = -1", "provider[0].receivers", "must be at least 0"),
    ('transmitters = "2"', "provider[0].transmitters", "expected an integer"),
])
def test_bind_kind_rules(tmp_path: Path, extra: str, path: str, rule: str) -> None:
    found = problems(provider(extra), tmp_path)
    assert found[0].path == path
    assert rule in found[0].rule


def test_wavy_counts_transmitters_and_receivers_toward_its_four_binds(tmp_path: Path) -> None:
    assert len(parse(provider("transmitters = 2\nreceivers = 2", profile="wavy"),
                     tmp_path).providers[0].bind_targets) == 4
    problem = only_problem(provider("transmitters = 2\nreceivers = 1", profile="wavy"),
                           tmp_path)
    assert problem.path == "provider[0].transmitters"
    assert 'must give at least 4 binds for profile "wavy" (got 3)' in problem.rule


def test_a_table_of_receivers_only_takes_no_route(tmp_path: Path) -> None:
    found = problems(
        "[gateway]\ndefault_provider = \"acme\"\n" + provider("receivers = 1")
        + provider("failover = \"acme\"", name="other"), tmp_path)
    assert [p.path for p in found] == ["provider[0].routes", "gateway.default_provider",
                                       "provider[1].failover"]
    assert all("has only receiver binds" in p.rule for p in found)


def test_receivers_alone_serve_an_account_whose_other_table_sends(tmp_path: Path) -> None:
    text = (provider("transmitters = 2")
            + no_routes(provider("receivers = 2", name="acme-rx")))
    loaded = parse(text, tmp_path)
    assert loaded.warnings == ()
    tx, rx = loaded.providers
    assert tx.account == rx.account == "acme@smsc.example.com:2775"
    assert not rx.can_submit


# --------------------------------------------------------------------------- transports


def test_hosts_may_name_their_transport(tmp_path: Path) -> None:
    text = with_hosts(provider("binds = 3\ntls = false"),
                      "tls://a.example:3635", "tcp://127.0.0.1:2775", "localhost:2776")
    loaded = parse(text, tmp_path)
    (acme,) = loaded.providers
    assert [(t.host, t.tls) for t in acme.bind_targets] == [
        ("a.example", True), ("127.0.0.1", False), ("localhost", False)]
    assert acme.profile.hosts == ("tls://a.example:3635", "tcp://127.0.0.1:2775",
                                  "localhost:2776")
    assert loaded.warnings == ()  # loopback in plain, a.example in TLS
    assert 'hosts = ["tls://a.example:3635", "tcp://127.0.0.1:2775", "localhost:2776"]' \
        in render_config(loaded)


def test_a_plain_host_beyond_loopback_is_warned_by_its_path(tmp_path: Path) -> None:
    loaded = parse(with_hosts(provider("binds = 2"), "a.example:1", "tcp://b.example:2"),
                   tmp_path)
    assert [w.path for w in loaded.warnings] == ["provider[0].hosts[1]"]
    assert loaded.warnings[0].rule.startswith("plain SMPP")


def test_tls_keys_are_ignored_when_no_host_uses_tls(tmp_path: Path) -> None:
    loaded = parse(with_hosts(provider('tls_min_version = "1.3"'), "tcp://127.0.0.1:1"),
                   tmp_path)
    assert loaded.warnings == (
        Problem("provider[0].tls_min_version", "ignored because no host uses TLS"),)


@pytest.mark.parametrize(("host", "rule"), [
    ("ssl://a.example:1", 'unknown transport "ssl://": write "tls://host:port"'),
    ("tls://a.example", 'expected "host:port"'),
    ("tls://smsc.example.com:2775", "duplicate host (also provider[0].hosts[0])"),
])
def test_host_transport_rules(tmp_path: Path, host: str, rule: str) -> None:
    problem = only_problem(with_hosts(provider("binds = 2"), "smsc.example.com:2775", host),
                           tmp_path)
    assert problem.path == "provider[0].hosts[1]"
    assert rule in problem.rule


# --------------------------------------------------------------------------- accounts


def test_tables_on_one_account_share_its_key(tmp_path: Path) -> None:
    """Same system_id and a server in common: one account, transitively; the key spells
    the system_id and every server of the account, sorted, whatever the transport."""
    text = (with_hosts(provider(), "B.example:1")
            + with_hosts(provider(name="ab"), "tls://a.example:1", "b.example:1")
            + with_hosts(provider(name="abc"), "tcp://127.0.0.1:9", "a.example:1")
            + with_hosts(provider(name="other"), "c.example:1"))
    loaded = parse(text, tmp_path)
    keys = [p.account for p in loaded.providers]
    assert keys[:3] == ["acme@127.0.0.1:9,a.example:1,b.example:1"] * 3
    assert keys[3] == "acme@c.example:1"


def test_another_system_id_on_the_same_server_is_another_account(tmp_path: Path) -> None:
    text = provider() + provider(name="xy").replace('system_id = "acme"', 'system_id = "xy"')
    first, second = parse(text, tmp_path).providers
    assert first.account == "acme@smsc.example.com:2775"
    assert second.account == "xy@smsc.example.com:2775"


@pytest.mark.parametrize(("extra", "key"), [
    ('message_id_format = "decimal"', "message_id_format"),
    ('receipt_id_base = "hex"', "receipt_id_base"),
    ('receipt_style = "qikberry"', "receipt_style"),
])
def test_tables_of_one_account_must_read_message_ids_alike(
    tmp_path: Path, extra: str, key: str
) -> None:
    problem = only_problem(provider() + provider(extra, name="two"), tmp_path)
    assert problem.path == f"provider[1].{key}"
    assert "differs from" in problem.rule and "of provider[0], a table of the same SMSC " \
        'account (system_id "acme"' in problem.rule


def test_the_bind_minimum_counts_every_table_of_the_account(tmp_path: Path) -> None:
    tx = provider("transmitters = 2", profile="wavy")
    rx = no_routes(provider("receivers = 2", profile="wavy", name="rx"))
    loaded = parse(tx + rx, tmp_path)
    assert loaded.providers[0].account == loaded.providers[1].account
    small = no_routes(provider("receivers = 1", profile="wavy", name="rx"))
    found = problems(tx + small, tmp_path)
    assert [p.path for p in found] == ["provider[0].transmitters", "provider[1].receivers"]
    assert found[0].rule.endswith("(got 2); 3 with those of provider[1], on the same account")


# --------------------------------------------------------------------------- secrets


def write_secret(path: Path, value: str) -> Path:
    path.write_text(value)
    path.chmod(0o600)
    return path


def test_password_file_resolves_in_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    write_secret(creds / "acme", PROVIDER_SECRET + "\n")
    text = provider().replace('password_env = "PW"', 'password_file = "acme"')
    (acme,) = parse(text, tmp_path, {"CREDENTIALS_DIRECTORY": str(creds)}).providers
    assert acme.password.reveal() == PROVIDER_SECRET  # trailing newline stripped
    assert acme.password.source == f"file {creds / 'acme'}"


def test_password_file_relative_to_config_without_credentials_directory(tmp_path: Path) -> None:
    write_secret(tmp_path / "acme.pass", "pw")
    text = provider().replace('password_env = "PW"', 'password_file = "acme.pass"')
    assert parse(text, tmp_path).providers[0].password.reveal() == "pw"


def test_password_file_missing(tmp_path: Path) -> None:
    text = provider().replace('password_env = "PW"', 'password_file = "nope"')
    problem = only_problem(text, tmp_path)
    assert problem.path == "provider[0].password_file"
    assert problem.rule == f"cannot read {tmp_path / 'nope'}: No such file or directory"


def test_password_file_unreadable(tmp_path: Path) -> None:
    (tmp_path / "acme.pass").mkdir()
    text = provider().replace('password_env = "PW"', 'password_file = "acme.pass"')
    problem = only_problem(text, tmp_path)
    assert problem == Problem(
        "provider[0].password_file", f"cannot read {tmp_path / 'acme.pass'}: Is a directory"
    )


def test_password_file_empty_or_world_readable(tmp_path: Path) -> None:
    write_secret(tmp_path / "empty", "\n")
    text = provider().replace('password_env = "PW"', 'password_file = "empty"')
    assert only_problem(text, tmp_path).rule == f"{tmp_path / 'empty'} is empty"
    (tmp_path / "open").write_text("pw")
    (tmp_path / "open").chmod(0o644)
    loaded = parse(provider().replace('password_env = "PW"', 'password_file = "open"'), tmp_path)
    assert [w.path for w in loaded.warnings] == ["provider[0].password_file"]
    assert "readable by every local user (mode 0644)" in loaded.warnings[0].rule


def test_password_env_not_set(tmp_path: Path) -> None:
    text = provider().replace('password_env = "PW"', 'password_env = "ACME_PASSWORD"')
    problem = only_problem(text, tmp_path)
    assert problem == Problem(
        "provider[0].password_env", "environment variable ACME_PASSWORD is not set"
    )


def test_only_one_password_source(tmp_path: Path) -> None:
    problem = only_problem(provider('password = "x"'), tmp_path)
    assert problem == Problem("provider[0].password", "set only one of password_env, password")


@pytest.mark.parametrize(("password", "rule"), [
    ("123456789", "9 octets, more than the 8 SMPP 3.4 §4.1.1 allows: every bind would fail"),
    ("pässwörd1", "9 octets, more than the 8 SMPP 3.4 §4.1.1 allows: every bind would fail"),
    ("pw\x00x", "holds a NUL octet, which ends an SMPP C-Octet String (§3.1): every bind "
                "would fail"),
    ("pw€", "is not Latin-1 text, which an SMPP C-Octet String must be: every bind would "
           "fail"),
])
def test_a_password_no_bind_can_carry_is_an_error(
    tmp_path: Path, password: str, rule: str
) -> None:
    """Not a warning: such a provider would sit in backoff forever (SMPP 3.4 §4.1.1). The
    problem names the key the password came from, never the password."""
    problem = only_problem(provider(), tmp_path, {"PW": password})
    assert problem == Problem("provider[0].password_env", rule)
    assert password not in problem.rule


def test_any_other_value_no_bind_could_carry_is_an_error(tmp_path: Path) -> None:
    """What the key rules let through but the bind PDU cannot carry (a NUL inside
    system_id) is caught by building the session config each bind would use."""
    text = provider().replace('system_id = "acme"', 'system_id = "ac\\u0000me"')
    assert only_problem(text, tmp_path) == Problem(
        "provider[0].system_id", "contains a NUL octet: every bind would fail")


def test_explicit_password_warns(tmp_path: Path) -> None:
    text = provider().replace('password_env = "PW"', 'password = "pw"')
    loaded = parse(text, tmp_path)
    assert loaded.providers[0].password.reveal() == "pw"
    (warning,) = loaded.warnings
    assert warning.path == "provider[0].password"
    assert "written in the config file" in warning.rule


def test_secret_is_masked() -> None:
    secret = Secret(SECRET, "env X")
    assert repr(secret) == "Secret('***')"
    assert str(secret) == "***"
    assert f"{secret}" == "***" and f"{secret!r}" == "Secret('***')"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET) and secret != Secret("other")


def test_secrets_never_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_secret(tmp_path / "hmac", SECRET)
    text = (
        provider().replace('password_env = "PW"', f'password = "{PROVIDER_SECRET}"')
        + """
[gateway]
api_listen = "127.0.0.1:8080"
api_token_env = "TOKEN"

[[webhook]]
url = "https://hooks.example.com/x"
auth = "bearer"
token_env = "TOKEN"
hmac_secret_file = "hmac"
"""
    )
    loaded = parse(text, tmp_path, {"TOKEN": SECRET})
    assert loaded.providers[0].password.reveal() == PROVIDER_SECRET
    shown = [repr(loaded), str(loaded), render_config(loaded), *map(str, loaded.warnings)]
    assert all(SECRET not in s and PROVIDER_SECRET not in s for s in shown)
    assert 'password = "***"' in render_config(loaded)

    # The same file with one mistake: the error must not carry any secret either.
    with pytest.raises(ConfigError) as info:
        parse(text + "batch_size = 0\n", tmp_path, {"TOKEN": SECRET})
    assert info.value.problems == [Problem("webhook[0].batch_size", "must be between 1 and 10000")]
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)

    config_file = tmp_path / "smppgw.toml"
    config_file.write_text(text)
    monkeypatch.setenv("TOKEN", SECRET)
    monkeypatch.setenv("PW", "pw")
    assert check_config_cmd.run(argparse.Namespace(config=config_file, quiet=False)) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out and SECRET not in err


def test_check_config_masks_secrets_inside_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook URL may carry a token in its query string: the resolved config shows the
    URL with every query value (and any userinfo) as ***."""
    text = webhook(f'url = "https://hooks.example.com/in?token={SECRET}&v=2#{SECRET}"')
    config_file = tmp_path / "smppgw.toml"
    config_file.write_text(text)
    monkeypatch.setenv("PW", "pw")
    assert check_config_cmd.run(argparse.Namespace(config=config_file, quiet=False)) == 0
    out, err = capsys.readouterr()
    assert SECRET not in out and SECRET not in err
    assert 'url = "https://hooks.example.com/in?token=***&v=***#***"' in out
    assert mask_url(f"https://bob:{SECRET}@h.example:8443/p?a=1&flag") == (
        "https://***@h.example:8443/p?a=***&flag")
    assert mask_url("https://h.example/p") == "https://h.example/p"


def test_wrong_type_never_echoes_the_value(tmp_path: Path) -> None:
    text = provider().replace('password_env = "PW"', "password = 98765432123")
    problem = only_problem(text, tmp_path)
    assert problem == Problem("provider[0].password", "expected a string, got an integer")


def test_secret_file_not_utf8_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "bin").write_bytes(b"\xff\xfe" + SECRET.encode())
    (tmp_path / "bin").chmod(0o600)
    text = provider().replace('password_env = "PW"', 'password_file = "bin"')
    problem = only_problem(text, tmp_path)
    assert problem.rule == f"{tmp_path / 'bin'} is not UTF-8 text"


# --------------------------------------------------------------------------- [store]


def store(lines: str) -> str:
    return GENERIC_PROVIDER + "\n[store]\n" + lines + "\n"


def test_store_defaults_to_sqlite_for_30_days(tmp_path: Path) -> None:
    loaded = parse(GENERIC_PROVIDER, tmp_path)
    assert loaded.store == config.StoreConfig(url=None, password=None, keep_days=30.0)
    assert loaded.store.backend == "sqlite"
    assert parse(store("keep_days = 7"), tmp_path).store.keep_days == 7.0


def test_store_postgresql_url_and_password_file(tmp_path: Path) -> None:
    write_secret(tmp_path / "pg", SECRET)
    loaded = parse(store('url = "postgresql://smppgw@/smppgw?host=/run/postgresql"\n'
                         'password_file = "pg"\nkeep_days = 0.5'), tmp_path)
    assert loaded.store.backend == "postgresql"
    assert loaded.store.url == "postgresql://smppgw@/smppgw?host=/run/postgresql"
    assert loaded.store.password is not None and loaded.store.password.reveal() == SECRET
    rendered = render_config(loaded)
    assert SECRET not in rendered and SECRET not in repr(loaded)
    data = tomllib.loads(rendered)
    assert data["store"] == {"url": "postgresql://smppgw@/smppgw?host=/run/postgresql",
                             "password": "***", "keep_days": 0.5}
    assert f'password = "***"  # from file {tmp_path / "pg"}' in rendered


@pytest.mark.parametrize(
    ("lines", "path", "rule"),
    [
        ('url = "mysql://smppgw@db/smppgw"', "store.url",
         "must be a postgresql:// URL (leave url out for the embedded SQLite store in"
         " gateway.state_dir)"),
        (f'url = "postgresql://smppgw:{SECRET}@db.example.com/smppgw?sslmode=verify-full"',
         "store.url", "must not carry a password (it would show in logs and in check-config);"
         " use password_file or password_env"),
        (f'url = "postgresql://smppgw@/smppgw?host=/run/postgresql&password={SECRET}"',
         "store.url", "must not carry a password (it would show in logs and in check-config);"
         " use password_file or password_env"),
        ('url = "postgresql://smppgw@db:99999/smppgw"', "store.url",
         "is not a valid URL: postgresql://USER@HOST:PORT/DATABASE with a port from 1 to"
         " 65535"),
        ('url = ""', "store.url", "must not be empty"),
        ('password_env = "PGPASS"', "store.password_env",
         "only used with url (the embedded SQLite store has no password)"),
        ("keep_days = 0", "store.keep_days", "must be greater than 0"),
        ('keep_days = "30"', "store.keep_days", "expected a number, got a string"),
        ('path = "/var/lib/x"', "store.path", None),
    ],
)
def test_store_rule(lines: str, path: str, rule: str | None, tmp_path: Path) -> None:
    problem = only_problem(store(lines), tmp_path, {"PGPASS": SECRET})
    assert problem.path == path
    if rule is not None:
        assert problem.rule == rule
    assert SECRET not in problem.rule


def test_store_over_the_network_without_tls_warns(tmp_path: Path) -> None:
    loaded = parse(store('url = "postgresql://smppgw@db.example.com:5432/smppgw"'), tmp_path)
    (warning,) = loaded.warnings
    assert warning.path == "store.url" and "sslmode=verify-full" in warning.rule
    for quiet in ('url = "postgresql://smppgw@db.example.com/smppgw?sslmode=verify-full"',
                  'url = "postgresql://smppgw@127.0.0.1/smppgw"',
                  'url = "postgresql://smppgw@/smppgw?host=/run/postgresql"'):
        assert parse(store(quiet), tmp_path).warnings == ()


# --------------------------------------------------------------------------- webhooks


def webhook(lines: str) -> str:
    return GENERIC_PROVIDER + "\n[[webhook]]\n" + lines + "\n"


def test_webhook_defaults(tmp_path: Path) -> None:
    (hook,) = parse(webhook('url = "https://hooks.example.com/x"'), tmp_path).webhooks
    assert hook.events == ("receipt", "state", "mo")
    assert hook.auth == "none"
    assert (hook.timeout, hook.batch_size, hook.max_delay) == (3.0, 100, 100000.0)


@pytest.mark.parametrize(
    ("lines", "path", "rule"),
    [
        ("", "webhook[0].url", "missing required key"),
        ('url = "ftp://x/"', "webhook[0].url", "http:// or https://"),
        (
            f'url = "https://user:{SECRET}@h/"',
            "webhook[0].url",
            "must not carry credentials",
        ),
        ('url = "https://h/"\nevents = ["dlr"]', "webhook[0].events[0]", 'got "dlr"'),
        ('url = "https://h/"\nevents = []', "webhook[0].events", "at least one"),
        (
            'url = "https://h/"\nauth = "basic"\npassword_env = "PW"',
            "webhook[0].username",
            "missing",
        ),
        (
            'url = "https://h/"\nauth = "basic"\nusername = "u"',
            "webhook[0].password_file",
            "missing",
        ),
        ('url = "https://h/"\nauth = "bearer"', "webhook[0].token_file", "missing required key"),
        ('url = "https://h/"\ntoken_env = "PW"', "webhook[0].token_env", 'auth = "bearer"'),
        (
            'url = "https://h/"\nusername = "u"',
            "webhook[0].username",
            'only used with auth = "basic"',
        ),
        ('url = "https://h/"\ntimeout = 0', "webhook[0].timeout", "greater than 0"),
        ('url = "https://h/"\nretries = 3', "webhook[0].retries", "unknown key"),
    ],
)
def test_webhook_rule(lines: str, path: str, rule: str, tmp_path: Path) -> None:
    problem = only_problem(webhook(lines), tmp_path)
    assert problem.path == path
    assert rule in problem.rule
    assert SECRET not in problem.rule


def test_webhook_basic_and_bearer(tmp_path: Path) -> None:
    basic = 'url = "https://h/"\nauth = "basic"\nusername = "u"\npassword_env = "PW"'
    (hook,) = parse(webhook(basic), tmp_path).webhooks
    assert hook.username == "u" and hook.password is not None and hook.password.reveal() == "pw"
    bearer = 'url = "https://h/"\nauth = "bearer"\ntoken_env = "PW"\nevents = ["mo"]'
    (hook,) = parse(webhook(bearer), tmp_path).webhooks
    assert hook.token is not None and hook.token.reveal() == "pw"
    assert hook.events == ("mo",)


def test_webhook_tls_client_certificate_and_headers(tmp_path: Path) -> None:
    """What Wiraya's callbacks allow: a self-signed receiver (its CA file), a client
    certificate, custom headers; check-config shows the files and masks the header values."""
    for name in ("ca.pem", "client.crt", "client.key"):
        (tmp_path / name).write_text("x")
    lines = ('url = "https://hooks.example.com/x"\nca_file = "ca.pem"\n'
             'client_cert = "client.crt"\nclient_key = "client.key"\n'
             'headers = { "X-ApiKey" = "k-123", "X-Tenant" = "acme" }')
    loaded = parse(webhook(lines), tmp_path)
    (hook,) = loaded.webhooks
    assert (hook.ca_file, hook.client_cert, hook.client_key) == (
        tmp_path / "ca.pem", tmp_path / "client.crt", tmp_path / "client.key")
    assert (hook.tls_verify, hook.tls_min_version) == (True, "1.2")
    assert hook.headers == (("X-ApiKey", "k-123"), ("X-Tenant", "acme"))
    assert loaded.warnings == ()
    rendered = render_config(loaded)
    assert 'headers = { "X-ApiKey" = "***", "X-Tenant" = "***" }' in rendered
    assert "k-123" not in rendered and f'ca_file = "{tmp_path / "ca.pem"}"' in rendered


def test_webhook_without_verification_is_warned_about(tmp_path: Path) -> None:
    loaded = parse(webhook('url = "https://h/"\ntls_verify = false'), tmp_path)
    (warning,) = loaded.warnings
    assert warning.path == "webhook[0].tls_verify"
    assert "certificate verification is off" in warning.rule
    (hook,) = loaded.webhooks
    assert hook.tls_verify is False
    # TLS keys on a plain http:// url do nothing: said so.
    loaded = parse(webhook('url = "http://127.0.0.1:8000/"\ntls_verify = false'), tmp_path)
    assert [(w.path, w.rule) for w in loaded.warnings] == [
        ("webhook[0].tls_verify", "ignored because the url is not https://")]


@pytest.mark.parametrize(
    ("lines", "path", "rule"),
    [
        ('headers = { "Content-Type" = "text/plain" }', 'webhook[0].headers."Content-Type"',
         "is set by smppgw itself"),
        ('headers = { "X-Smppgw-Signature" = "x" }', 'webhook[0].headers."X-Smppgw-Signature"',
         "is set by smppgw itself"),
        ('auth = "bearer"\ntoken_env = "PW"\nheaders = { "authorization" = "x" }',
         'webhook[0].headers."authorization"', 'is set by smppgw itself (auth = "bearer")'),
        ('headers = { "Bad Name" = "x" }', 'webhook[0].headers."Bad Name"',
         "is not an HTTP header name"),
        ('headers = { "X-A" = "line\\nbreak" }', 'webhook[0].headers."X-A"', "no line breaks"),
        ('headers = { "X-A" = 5 }', 'webhook[0].headers."X-A"', "must be a string"),
        ('headers = { "X-A" = "1", "x-a" = "2" }', 'webhook[0].headers."x-a"', "given twice"),
        ("headers = 5", "webhook[0].headers", 'table of header = "value"'),
        ('client_key = "k.pem"', "webhook[0].client_key", "no such file"),
        ('tls_min_version = "1.4"', "webhook[0].tls_min_version", 'got "1.4"'),
    ],
)
def test_webhook_tls_and_header_rules(lines: str, path: str, rule: str, tmp_path: Path) -> None:
    found = problems(webhook(f'url = "https://h/"\n{lines}'), tmp_path)
    assert any(p.path == path and rule in p.rule for p in found), found


def test_plain_http_webhook_warns(tmp_path: Path) -> None:
    loaded = parse(webhook('url = "http://hooks.example.com/"'), tmp_path)
    assert [w.path for w in loaded.warnings] == ["webhook[0].url"]
    assert parse(webhook('url = "http://127.0.0.1:8000/"'), tmp_path).warnings == ()


# --------------------------------------------------------------------------- many at once


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    text = """
[gateway]
socket_mode = 660
lg_level = "info"

[[provider]]
name = "wavy"
profile = "wavy"
system_id = "acme"
password_env = "MISSING"
binds = 2
window = 0
enquire_link_interval = 120
routes = ["55", "5x"]
failover = "nobody"

[[provider]]
name = "wavy"
profile = "generic"
system_id = "acme"
password_env = "PW"
hosts = ["h:1"]
routes = ["55"]
"""
    found = problems(text, tmp_path)
    assert [p.path for p in found] == [
        "gateway.lg_level",
        "gateway.socket_mode",
        "provider[0].password_env",
        "provider[0].binds",
        "provider[0].enquire_link_interval",
        "provider[0].window",
        "provider[0].routes[1]",
        "provider[1].name",
        "provider[0].failover",
        "provider[1].routes[0]",
    ]


# --------------------------------------------------------------------------- load & render


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.problems == [Problem("", "cannot read: No such file or directory")]


def test_render_is_toml_with_secrets_masked() -> None:
    loaded = load_config(EXAMPLE, environ=EXAMPLE_ENV)
    rendered = render_config(loaded)
    data = tomllib.loads(rendered)
    assert data["provider"][0]["password"] == "***"
    assert data["provider"][1]["tlv_defaults"] == {
        "0x1400": "1101234567890",
        "0x1402": "1702345678901",
    }
    assert data["gateway"]["socket_mode"] == "0660"
    assert "#   wavy#3 transceiver tls://smpp-messaging.wavy.global:2444" in rendered


def test_format_problem() -> None:
    assert format_problem("a.toml", Problem("provider[0].window", "must be at least 1")) == (
        "a.toml: provider[0].window: must be at least 1"
    )
    assert format_problem("a.toml", Problem("", "invalid TOML")) == "a.toml: invalid TOML"


# --------------------------------------------------------------------------- check-config


def run_check(path: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    check_config_cmd.add_arguments(parser)
    return check_config_cmd.run(parser.parse_args(["-c", str(path), *argv]))


def test_check_config_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "pw")
    path = tmp_path / "smppgw.toml"
    path.write_text(provider("tls_verify = false"))
    assert run_check(path) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"warning: {path}: provider[0].tls_verify: certificate verification is off: anyone on "
        "the path can pose as the SMSC and read the password\n"
    )
    assert tomllib.loads(out)["provider"][0]["name"] == "acme"
    assert run_check(path, "--quiet") == 0
    assert capsys.readouterr().out == ""


def test_check_config_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PW", "pw")
    path = tmp_path / "smppgw.toml"
    path.write_text(provider("window = 0\nwindw = 3"))
    assert run_check(path) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f'{path}: provider[0].windw: unknown key (did you mean "window"?)',
        f"{path}: provider[0].window: must be at least 1",
    ]


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.toml"
    assert run_check(path) == 2
    assert capsys.readouterr().err == f"{path}: cannot read: No such file or directory\n"


def test_check_config_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[gateway]\nlog_level = "info"\nstate_dir = \n')
    assert run_check(path) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}: invalid TOML: ")
    assert "line 3, column" in line


def test_check_config_example(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    assert run_check(EXAMPLE) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "wavy-pw" not in out and "qik-pw" not in out
