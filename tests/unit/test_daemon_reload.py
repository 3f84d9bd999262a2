"""What a reload (SIGHUP) applies of a new config, and what it leaves for the restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smppgw.config import Config, parse_config
from smppgw.daemon import _apply_at_reload


def config(tmp_path: Path, **gateway: Any) -> Config:
    provider = {"name": "gen", "profile": "generic", "system_id": "acme",
                "password_env": "PW", "hosts": ["127.0.0.1:2775"], "routes": ["55"]}
    return parse_config(
        {"gateway": {"state_dir": str(tmp_path), "submit_socket": str(tmp_path / "s.sock"),
                     **gateway},
         "provider": [provider]},
        base_dir=tmp_path, environ={"PW": "x"})


def test_reload_applies_routing_and_log_level_and_defers_the_rest(tmp_path: Path) -> None:
    running = config(tmp_path)
    loaded = config(tmp_path, default_provider="gen", log_level="debug", max_body_bytes=4096,
                    submit_socket=str(tmp_path / "other.sock"))
    applied, deferred = _apply_at_reload(running, loaded)
    assert applied.gateway.default_provider == "gen" and applied.gateway.log_level == "debug"
    assert applied.gateway.max_body_bytes == running.gateway.max_body_bytes
    assert applied.gateway.submit_socket == running.gateway.submit_socket
    assert applied.providers == loaded.providers
    assert deferred == ["gateway.submit_socket", "gateway.max_body_bytes"]


def test_an_unchanged_gateway_defers_nothing(tmp_path: Path) -> None:
    applied, deferred = _apply_at_reload(config(tmp_path), config(tmp_path))
    assert deferred == [] and applied == config(tmp_path)
