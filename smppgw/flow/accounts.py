"""SMSC accounts: which provider tables log in to the same account, and the key under which
that account's receipts are correlated with its messages. Pure: names and endpoints in, keys
out; config.py calls it once per load.

An SMSC knows an ESME by its login (system_id) on its servers, not by how smppgw splits the
binds into provider tables. A receipt travels on whatever receiver bind of the account the
SMSC picks, so two tables with the same system_id on a server they share are one account:
one correlation space, whatever table sent the message or opened the bind the receipt came
on. Tables whose system_id matches but whose servers are all different stay apart (another
SMSC may well know another customer by the same name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["account_groups", "account_key", "endpoint"]


def endpoint(host: str, port: int) -> str:
    """One server as account keys spell it: the host name in lower case without a final
    dot, an IPv6 literal in brackets, and the port. The transport (tcp:// or tls://) is not
    part of it: it changes how the bytes travel, not whose account they reach."""
    name = host.lower().rstrip(".")
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


def account_key(system_id: str, endpoints: Iterable[str]) -> str:
    """``system_id@host:port,host:port``: the system_id and the account's servers, sorted,
    so the same account gives the same key in every process, whatever the table order."""
    return f"{system_id}@{','.join(sorted(set(endpoints)))}"


def account_groups(tables: Sequence[tuple[str, frozenset[str]]]) -> list[int]:
    """For each table (system_id, its endpoints), the index of the first table of its
    account. Tables are one account when they share the system_id and a server, directly or
    through another table (a table on servers a+b joins one on a and one on b)."""
    parent = list(range(len(tables)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    for i, (system_id, endpoints) in enumerate(tables):
        for j in range(i):
            other_id, other_endpoints = tables[j]
            if other_id == system_id and endpoints & other_endpoints:
                first, second = sorted((root(i), root(j)))
                parent[second] = first
    return [root(i) for i in range(len(tables))]
