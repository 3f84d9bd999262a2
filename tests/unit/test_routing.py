"""Routing: explicit provider, longest prefix, default, failover after a bound-less period."""

from __future__ import annotations

import pytest

from smppgw.flow.routing import NoRouteError, RouteProvider, Router


def make_router(default: str | None = None) -> Router:
    return Router.build(
        [
            RouteProvider("wavy", routes=("55",), failover="backup", failover_after=60),
            RouteProvider("qikberry", routes=("91",)),
            RouteProvider("backup", routes=("5511",)),
        ],
        default,
    )


def test_longest_prefix_wins() -> None:
    router = make_router()
    assert router.route("5521999999999") == "wavy"
    assert router.route("5511999999999") == "backup"
    assert router.route("+919876543210") == "qikberry"


def test_explicit_provider_wins_over_prefix() -> None:
    assert make_router().route("5521999999999", "qikberry") == "qikberry"


def test_unknown_explicit_provider_is_an_error() -> None:
    with pytest.raises(NoRouteError, match="unknown provider 'nope'"):
        make_router().route("55", "nope")


def test_no_route_without_default_is_a_clear_error() -> None:
    with pytest.raises(NoRouteError, match="no provider route matches '4420'"):
        make_router().route("4420")
    assert make_router(default="qikberry").route("4420") == "qikberry"


def test_failover_only_after_the_configured_time_and_never_to_a_down_provider() -> None:
    router = make_router()
    assert router.route("5521", down_since={"wavy": 100.0}, now=159.0) == "wavy"
    assert router.route("5521", down_since={"wavy": 100.0}, now=160.0) == "backup"
    down_both = {"wavy": 100.0, "backup": 10.0}
    assert router.route("5521", down_since=down_both, now=500.0) == "wavy"


def test_default_must_exist() -> None:
    with pytest.raises(ValueError, match="default provider 'x'"):
        make_router(default="x")
