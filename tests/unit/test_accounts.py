"""flow.accounts: which provider tables are one SMSC account, and the key their receipts are
correlated under, as tables of inputs and answers."""

from __future__ import annotations

import pytest

from smppgw.flow.accounts import account_groups, account_key, endpoint


@pytest.mark.parametrize(("host", "port", "spelled"), [
    ("SMPP1.TxtSms.me.", 3635, "smpp1.txtsms.me:3635"),
    ("::1", 2775, "[::1]:2775"),
    ("10.0.0.5", 2443, "10.0.0.5:2443"),
])
def test_endpoints_are_spelled_one_way(host: str, port: int, spelled: str) -> None:
    assert endpoint(host, port) == spelled


def test_the_key_is_the_system_id_and_its_servers_sorted() -> None:
    assert account_key("acme", ["b:1", "a:2", "b:1"]) == "acme@a:2,b:1"
    # A system_id may hold "@" and ",": the key stays readable from the right.
    assert account_key("a@b,c", ["h:1"]) == "a@b,c@h:1"


@pytest.mark.parametrize(("tables", "groups"), [
    # one table
    ([("acme", {"a:1"})], [0]),
    # same system_id, a server in common: one account
    ([("acme", {"a:1", "b:1"}), ("acme", {"b:1"})], [0, 0]),
    # same system_id on other servers: another SMSC may know another customer so
    ([("acme", {"a:1"}), ("acme", {"c:1"})], [0, 1]),
    # another system_id on the same server: another account
    ([("acme", {"a:1"}), ("xyz", {"a:1"})], [0, 1]),
    # joined through a third table that shares a server with each
    ([("acme", {"a:1"}), ("acme", {"c:1"}), ("acme", {"a:1", "c:1"})], [0, 0, 0]),
    # a table without hosts joins nobody
    ([("acme", set()), ("acme", {"a:1"})], [0, 1]),
])
def test_account_groups(tables: list[tuple[str, set[str]]], groups: list[int]) -> None:
    assert account_groups([(s, frozenset(e)) for s, e in tables]) == groups
