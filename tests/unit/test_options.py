"""Option declarations name the settings field they set; settings are built from them, defaults read from one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from polyswarmclient.cli import ambassador, arbiter, microengine
from polyswarmclient.cli.options import CONNECTION, Option, build, field_default
from polyswarmclient.client import ClientConfig
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.ambassador import AmbassadorSettings
from polyswarmclient.services.arbiter import ArbiterSettings
from polyswarmclient.services.microengine import EngineConfig


@dataclass(frozen=True)
class Inner:
    depth: int = 3


@dataclass(frozen=True)
class Outer:
    name: str = "a"
    inner: Inner = field(default_factory=Inner)


NAME = Option("--name", "NAME", "name", target=(Outer, "name"))
DEPTH = Option("--depth", "DEPTH", "depth", type=int, target=(Outer, "inner.depth"), convert=int)


def test_an_option_with_a_target_shows_the_fields_default() -> None:
    """--help and the parser use the settings field's default, including nested ones."""
    assert NAME.effective_default == "a"
    assert DEPTH.effective_default == 3
    assert field_default(Outer, "inner.depth") == 3


def test_a_target_and_a_default_cannot_both_be_declared() -> None:
    """A default lives in one place: declaring it on the option too is a programming error."""
    with pytest.raises(TypeError, match="--name"):
        Option("--name", "NAME", "name", default="b", target=(Outer, "name"))


def test_build_converts_and_fills_nested_settings() -> None:
    """Values go through their converter into the (nested) field; untouched fields keep their defaults."""
    assert build(Outer, (NAME, DEPTH), {"name": "b", "depth": "7"}) == Outer("b", Inner(7))
    assert build(Outer, (DEPTH,), {"depth": "5"}) == Outer("a", Inner(5))


def test_a_value_the_converter_refuses_is_a_config_error_naming_the_option() -> None:
    """A bad value is one line naming the flag and its env var (exit 2), not a traceback."""
    with pytest.raises(ConfigError, match=r"--depth \(DEPTH\)"):
        build(Outer, (DEPTH,), {"depth": "deep"})


def test_the_connection_options_build_the_client_config() -> None:
    """--max-tx-fee is ether (0.05 by default), --state-dir a path, an empty API key none at all."""
    values = {option.name: option.effective_default for option in CONNECTION}
    values.update(max_tx_fee="0.2", state_dir="elsewhere", api_key="")
    config = build(ClientConfig, CONNECTION, values)
    assert config.transactions.max_fee == 2 * 10**17
    assert config.state_dir == Path("elsewhere")
    assert config.api_key is None
    assert {o.flag: o.effective_default for o in CONNECTION}["--max-tx-fee"] == "0.05"
    with pytest.raises(ConfigError, match="--max-tx-fee"):
        build(ClientConfig, CONNECTION, {**values, "max_tx_fee": "1e999x"})


@pytest.mark.parametrize(
    ("options", "settings"),
    [
        (microengine.MICROENGINE_OPTIONS, EngineConfig),
        (ambassador.OPTIONS, AmbassadorSettings),
        (arbiter.OPTIONS, ArbiterSettings),
    ],
)
def test_each_command_builds_its_default_settings_from_its_default_options(options, settings) -> None:
    """With every option at its default, a command's settings equal the settings class's own defaults."""
    values = {option.name: option.effective_default for option in options}
    assert build(settings, options, values) == settings()


def test_repeated_chains_count_once_and_none_given_means_the_default() -> None:
    """--chains side --chains side is one chain; an empty CHAINS env var keeps the default."""
    values = {option.name: option.effective_default for option in microengine.MICROENGINE_OPTIONS}
    assert build(EngineConfig, microengine.MICROENGINE_OPTIONS, {**values, "chains": ("side", "side")}).chains == (
        "side",
    )
    assert build(EngineConfig, microengine.MICROENGINE_OPTIONS, {**values, "chains": ()}).chains == ("side",)
