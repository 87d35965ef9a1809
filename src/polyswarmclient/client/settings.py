"""What a client is configured with (:class:`ClientConfig` and the pipeline's :class:`TransactionSettings`):
plain dataclasses, importable without the HTTP stack or eth-account, so the CLI can declare its options
(and answer ``--help``) before anything heavy is imported."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from polyswarmclient.transport.settings import HttpSettings, StreamSettings


@dataclass(frozen=True)
class TransactionSettings:
    """How hard the pipeline tries, and what one transaction may cost."""

    #: Whole build-verify-sign-post-confirm attempts when nonces need a resync.
    attempts: int = 3
    #: Extra waits for a receipt that timed out, before giving up with ``ReceiptTimeout``.
    receipt_polls: int = 2
    #: Re-posts of the same signed bytes after a broken ``POST /transactions``.
    post_retries: int = 2
    #: Most wei of ether one transaction may cost in gas (gas x gasPrice); ``None`` checks nothing.
    max_fee: int | None = 5 * 10**16


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs besides its signer. Each default lives here or in the settings classes."""

    polyswarmd_addr: str = "localhost:31337"
    api_key: str | None = field(default=None, repr=False)
    insecure_transport: bool = False
    allow_key_over_http: bool = False
    #: Pinned contract addresses and chain ids live here.
    state_dir: Path = Path(".polyswarm-state")
    #: The community's published contract addresses and chain ids (JSON); they win over first use.
    contracts_file: Path | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    stream: StreamSettings = field(default_factory=StreamSettings)
    transactions: TransactionSettings = field(default_factory=TransactionSettings)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
        return f"ClientConfig({shown}, api_key={'<set>' if self.api_key else None})"
