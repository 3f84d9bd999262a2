"""Fixtures shared by the smppgw integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from smppgw.pool.pool import BindPool
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


class RunningPools:
    """Bind pools a test runs: each ``pool.run()`` in a task this fixture owns, closed and
    awaited at the end of the test (the test's loop is their TaskGroup)."""

    def __init__(self) -> None:
        self._running: list[tuple[BindPool, asyncio.Task[None]]] = []
        self._idle: list[BindPool] = []

    def add(self, pool: BindPool) -> BindPool:
        """A pool the test does not run, closed at the end all the same."""
        self._idle.append(pool)
        return pool

    def start(self, pool: BindPool) -> BindPool:
        self._running.append((pool, asyncio.create_task(pool.run(), name=f"pool {pool.name}")))
        return pool

    async def close(self) -> None:
        for pool in self._idle:
            await pool.close(1)
        for pool, task in self._running:
            await pool.close(1)
            async with asyncio.timeout(10):
                await task


@pytest.fixture
async def pools() -> AsyncIterator[RunningPools]:
    running = RunningPools()
    yield running
    await running.close()
