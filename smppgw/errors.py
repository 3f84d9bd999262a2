"""The root of smppgw's exception tree and the errors shared outside the protocol core.

The protocol errors live in ``smppgw.smpp.errors`` and derive from :class:`SmppgwError` too, so a
caller can catch "anything smppgw raised on purpose" in one clause.
"""

from __future__ import annotations

from dataclasses import dataclass


class SmppgwError(Exception):
    """Base of every error smppgw raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One configuration problem: the key path (``provider[1].window``) and the broken rule."""

    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


class ConfigError(SmppgwError):
    """A configuration that cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
