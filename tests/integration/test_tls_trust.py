"""TLS trust through the daemon: a certificate file the operator fixes is used at once on a
reload (SIGHUP), without a restart. (The pin check before any SMPP byte and the file cycle at
the pool level are in test_pool.py.)"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from smppgw.simulator import SimulatorConfig
from tests.integration.test_accounts import until
from tests.integration.test_daemon_e2e import gateways, make_config, provider_table

__all__ = ["gateways"]   # the fixture, shared with test_daemon_e2e

pytestmark = pytest.mark.timeout(60)


async def test_a_reload_retries_at_once_a_bind_waiting_on_a_broken_ca_file(
    tmp_path: Path, sock_dir: Path, sim_factory: Any, gateways: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ca_file broken after the config was checked: the bind says why at its attempt and
    waits (30 s at least, nothing on the network can fix it); the operator fixes the file and
    reloads the unchanged config: the bind comes up at once, the daemon never restarted."""
    caplog.set_level(logging.WARNING, logger="smppgw.pool")
    sim = await sim_factory(SimulatorConfig(tls=True, cert_dir=str(tmp_path / "sim")))
    assert sim.cert_paths is not None
    ca_file = tmp_path / "provider-ca.pem"
    ca_file.write_bytes(sim.cert_paths.ca.read_bytes())
    config = make_config(tmp_path, sock_dir / "s.sock", [provider_table(
        "acme", "generic", sim, ["55"], binds=1, ca_file=str(ca_file))])
    ca_file.write_text("not a certificate\n")
    gw = await gateways(config)

    async def waiting() -> bool:
        (bind,) = (await gw.get("/v1/status"))["binds"]
        return bool(bind["state"] == "backoff")

    await until(waiting)
    (bind,) = (await gw.get("/v1/status"))["binds"]
    assert f"cannot load ca_file {ca_file}" in bind["last_error"]
    ca_file.write_bytes(sim.cert_paths.ca.read_bytes())
    assert await gw.daemon.reload(config)
    await sim.wait_bound(1, timeout=10)
    assert gw.daemon.providers["acme"].pool.bound_count == 1
