"""The polyswarmd address rules: schemes, path prefixes, and never sending a key over http."""

from __future__ import annotations

import pytest

from polyswarmclient.errors import ConfigError
from polyswarmclient.transport.address import parse_address


def test_seed_form_defaults_to_https() -> None:
    """``host:port`` means https unless --insecure-transport is given."""
    assert parse_address("localhost:31337").base == "https://localhost:31337"


def test_seed_form_with_insecure_transport_is_http() -> None:
    """``host:port`` with --insecure-transport talks plain http."""
    assert parse_address("localhost:31337", insecure_transport=True).base == "http://localhost:31337"


def test_path_prefix_is_kept_by_concatenation() -> None:
    """A path prefix survives: URLs are base + path, never urljoin (which would drop /v1/default)."""
    address = parse_address("https://api.example/v1/default/")
    assert address.base == "https://api.example/v1/default"
    assert address.url("/bounties/parameters") == "https://api.example/v1/default/bounties/parameters"


def test_websocket_url_swaps_scheme_and_appends_events_route() -> None:
    """The event stream URL is the base with http->ws plus /events/?chain=<chain>."""
    assert (
        parse_address("https://api.example/v1/default").ws_url("side")
        == "wss://api.example/v1/default/events/?chain=side"
    )
    assert parse_address("h:1", insecure_transport=True).ws_url("home") == "ws://h:1/events/?chain=home"


def test_explicit_http_url_requires_insecure_transport() -> None:
    """An http:// address without --insecure-transport is refused with a message naming the flag."""
    with pytest.raises(ConfigError, match="--insecure-transport"):
        parse_address("http://localhost:31337")
    assert parse_address("http://localhost:31337", insecure_transport=True).base == "http://localhost:31337"


def test_explicit_https_is_never_downgraded() -> None:
    """--insecure-transport allows http but does not turn an https:// address into http."""
    assert parse_address("https://h:1", insecure_transport=True).base == "https://h:1"


def test_api_key_over_http_is_refused_unless_allowed() -> None:
    """An API key is not sent over http without --allow-key-over-http; the message names both flags."""
    with pytest.raises(ConfigError) as info:
        parse_address("localhost:31337", insecure_transport=True, api_key="secretkey123")
    assert "--allow-key-over-http" in str(info.value) and "--insecure-transport" in str(info.value)
    assert "secretkey123" not in str(info.value)
    allowed = parse_address("localhost:31337", insecure_transport=True, api_key="k", allow_key_over_http=True)
    assert allowed.base == "http://localhost:31337"


def test_api_key_over_https_is_fine() -> None:
    """With https an API key needs no extra flag."""
    assert parse_address("api.example", api_key="k").secure


@pytest.mark.parametrize(
    "addr",
    [
        "",
        "   ",
        "ftp://host",
        "wss://host/x",
        "https://",
        "https://h:notaport",
        "https://h/p?x=1",
        "https://h/#f",
        "local host:31337",
        "localhost\n:31337",
        "host\tname:1",
        "bad!host:1",
    ],
)
def test_bad_addresses_are_config_errors(addr: str) -> None:
    """Empty, unsupported-scheme, host-less, bad-port, query-carrying, spaced and ill-named addresses are refused."""
    with pytest.raises(ConfigError):
        parse_address(addr)


def test_credentials_in_address_are_refused_without_echoing_them() -> None:
    """user:password@ in the address is refused and the password is not repeated in the error."""
    with pytest.raises(ConfigError) as info:
        parse_address("https://user:hunter2@h:1")
    assert "hunter2" not in str(info.value)


def test_unknown_chain_is_refused() -> None:
    """Only home and side exist."""
    with pytest.raises(ConfigError, match="home"):
        parse_address("h:1").ws_url("main")


@pytest.mark.parametrize(
    ("addr", "base"),
    [
        ("HTTPS://Api.Example/v1/default/", "https://api.example/v1/default"),
        ("https://API.example:443/v1", "https://api.example:443/v1"),
        ("https://api.example:/v1", "https://api.example/v1"),
        ("[::1]:31337", "https://[::1]:31337"),
        ("https://[::1]/", "https://[::1]"),
    ],
)
def test_one_server_has_one_base_url_whatever_the_spelling(addr: str, base: str) -> None:
    """Host case and an empty port do not change the base URL (the key contract pins are stored under)."""
    assert parse_address(addr).base == base


@pytest.mark.parametrize("addr", ["localhost:31337", "127.0.0.1:31337", "LOCALHOST:31337/", "[::1]:31337"])
def test_every_name_of_this_machine_shares_one_pin_key(addr: str) -> None:
    """localhost, 127.0.0.1 and ::1 are one server for the contract pins, so none starts trusting afresh."""
    assert parse_address(addr, insecure_transport=True).pin_key == "http://localhost:31337"


def test_other_hosts_keep_their_base_url_as_pin_key() -> None:
    """A remote server's pins stay under its own base URL."""
    assert parse_address("api.example/v1/").pin_key == "https://api.example/v1"
