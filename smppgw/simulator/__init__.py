"""The SMSC simulator: a real SMPP 3.4 server for tests, `smppgw demo`, `smppgw simulate` and
benchmarks, with scenarios and faults as frozen data (scenario.py) and recording for tests.

Runs on asyncio over smppgw's own codec; loopback by default.
"""

from __future__ import annotations

from .scenario import (
    Account,
    Faults,
    IdFormat,
    ReceiptPlan,
    ReceiptRouting,
    ReceiptStyle,
    SimulatorConfig,
    parse_outcomes,
)
from .server import Delivery, MalformedKind, Record, SimConnection, SmscSimulator

__all__ = [
    "Account",
    "Delivery",
    "Faults",
    "IdFormat",
    "MalformedKind",
    "ReceiptPlan",
    "ReceiptRouting",
    "ReceiptStyle",
    "Record",
    "SimConnection",
    "SimulatorConfig",
    "SmscSimulator",
    "parse_outcomes",
]
