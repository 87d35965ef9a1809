"""The keystores shipped inside the package are the published test keystores, byte for byte."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "keyfiles-testing"
PACKAGED = ROOT / "src" / "polyswarmclient" / "devnet" / "keyfiles"


def test_packaged_keystores_equal_the_published_ones() -> None:
    """A pip-installed devnet funds exactly the keys documented in keyfiles-testing/README.md."""
    published = {p.name: p.read_bytes() for p in PUBLISHED.glob("*_keyfile")}
    packaged = {p.name: p.read_bytes() for p in PACKAGED.glob("*_keyfile")}
    assert published and packaged == published
