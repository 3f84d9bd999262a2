"""Fixtures shared by the smppgw integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from smppgw.simulator import SimulatorConfig, SmscSimulator


@pytest.fixture
async def sim_factory() -> AsyncIterator[Callable[[SimulatorConfig], Awaitable[SmscSimulator]]]:
    """Starts one SMSC simulator per call, on its config; all are closed after the test."""
    started: list[SmscSimulator] = []

    async def start(config: SimulatorConfig) -> SmscSimulator:
        sim = SmscSimulator(config)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.close()
