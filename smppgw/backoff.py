"""Moved to smppgw.flow.policy; this name stays until the pool imports it from there."""

from smppgw.flow.policy import Backoff

__all__ = ["Backoff"]
