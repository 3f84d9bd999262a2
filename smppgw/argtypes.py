"""argparse value types the subcommands share, so a bad value is refused by argparse itself
(exit 2, the option's name and the rule) before any work starts. Stdlib only: the CLI imports
this for every command.
"""

from __future__ import annotations

import argparse
import math

__all__ = ["non_negative_seconds", "positive_seconds"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    return value


def positive_seconds(text: str) -> float:
    """A timeout or an interval: finite and above 0 (0 would give up, or spin, at once)."""
    value = _seconds(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """A delay: finite, 0 or more (0 means none)."""
    value = _seconds(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text!r}")
    return value
