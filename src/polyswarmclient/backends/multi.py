"""``multi``: several backends on every artifact at once, one verdict by a fixed rule.

The members are the slugs in ``MULTI_BACKENDS`` (space or comma separated; default ``clamav yara``),
each loaded like ``--backend`` and set up and torn down with ``multi``. Each artifact goes to every
member concurrently; then (:func:`combine`):

* no member asserts (or every member's scan fails): no assertion;
* **malicious** when any asserting member says malicious, **benign** when every asserting member says
  benign (polyswarm-client's multi used the same ``any``);
* confidence: the highest confidence among the members that agree with that verdict;
* metadata: ``malware_family`` of the first malicious member (in ``MULTI_BACKENDS`` order) and, under
  ``backends``, each member's verdict (``malicious``, ``benign``, ``no assertion`` or ``failed``) and family.

A member whose scan raises counts as not asserting (logged); the others still decide.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult, call_scan, maybe_await
from polyswarmclient.backends.loader import load_backend_class
from polyswarmclient.backends.metadata import family_of, verdict_metadata
from polyswarmclient.errors import ConfigError, ScanError

log = logging.getLogger("microengine.backend.multi")

DEFAULT_MEMBERS = ("clamav", "yara")


def member_slugs(text: str | None) -> list[str]:
    """``MULTI_BACKENDS``'s slugs in order, without repeats; the default when empty; ``multi`` is refused."""
    slugs = list(dict.fromkeys(s for s in re.split(r"[\s,]+", text or "") if s)) or list(DEFAULT_MEMBERS)
    if "multi" in slugs:
        raise ConfigError("MULTI_BACKENDS cannot name multi itself")
    return slugs


def _describe(result: ScanResult | BaseException) -> dict[str, str]:
    if isinstance(result, BaseException):
        return {"verdict": "failed"}
    if not result.bit:
        return {"verdict": "no assertion"}
    if result.verdict:
        return {"verdict": "malicious", "malware_family": family_of(result.metadata)}
    return {"verdict": "benign"}


def combine(results: Sequence[tuple[str, ScanResult | BaseException]]) -> ScanResult:
    """One verdict from the members' (name, result or the exception its scan raised), by the module's rule."""
    asserting = [r for _, r in results if isinstance(r, ScanResult) and r.bit]
    if not asserting:
        return ScanResult()
    malicious = [r for r in asserting if r.verdict]
    agreeing = malicious or asserting
    family = next((f for f in (family_of(r.metadata) for r in malicious) if f), "")
    return ScanResult(
        bit=True,
        verdict=bool(malicious),
        confidence=max(r.confidence for r in agreeing),
        metadata=verdict_metadata(family, backends={name: _describe(r) for name, r in results}),
    )


class MultiScanner(AbstractScanner):
    """Runs every member backend on each artifact and combines their answers (see the module)."""

    def __init__(self, members: Sequence[tuple[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(ScanMode.ASYNC, **kwargs)
        if members is None:
            members = [(slug, self._create(slug)) for slug in member_slugs(os.environ.get("MULTI_BACKENDS"))]
        if not members:
            raise ConfigError("multi needs at least one member backend (MULTI_BACKENDS)")
        self.members: list[tuple[str, Any]] = list(members)

    @staticmethod
    def _create(slug: str) -> Any:
        cls = load_backend_class(slug)
        try:
            return cls()
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"multi: member {slug!r} could not be created: {exc.__class__.__name__}: {exc}") from None

    async def setup(self) -> bool:
        for name, member in self.members:
            if await maybe_await(member.setup()) is False:
                raise ScanError(f"multi: member {name!r} refused to start (setup() returned False)")
        return True

    async def teardown(self) -> None:
        for name, member in self.members:
            try:
                await maybe_await(member.teardown())
            except Exception:
                log.warning("multi: teardown of member %s failed", name, exc_info=True)

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        answers = await asyncio.gather(
            *(call_scan(member.scan, guid, artifact_type, content, metadata, chain) for _, member in self.members),
            return_exceptions=True,
        )
        results: list[tuple[str, ScanResult | BaseException]] = []
        for (name, _), answer in zip(self.members, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer
                log.warning("bounty %s: multi member %s failed: %s: %s", guid, name, type(answer).__name__, answer)
            results.append((name, answer))
        if all(isinstance(r, BaseException) for _, r in results):
            raise ScanError(f"multi: every member failed on bounty {guid}")
        return combine(results)


__all__ = ["MultiScanner", "combine", "member_slugs"]
