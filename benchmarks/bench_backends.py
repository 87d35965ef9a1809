"""Scan backends' throughput: scans per second for eicar, yara, clamav and multi (clamav + yara) on the
demo corpus and on one 10 MiB artifact, each scan through the engine's isolated ``Backend`` (as the
microengine runs it), several at a time. Starts its own clamd (tests/clamd_daemon.py; StreamMaxLength
20M). Prints a table; asserts nothing.

    python benchmarks/bench_backends.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.clamd_daemon import Clamd  # noqa: E402

from polyswarmclient.artifacts import ArtifactType  # noqa: E402
from polyswarmclient.backends import create_backend, load_backend_class  # noqa: E402
from polyswarmclient.samples import build_samples  # noqa: E402

BACKENDS = ("eicar", "yara", "clamav", "multi")
BIG = 10 * 1024 * 1024


def _big_artifact() -> bytes:
    """10 MiB of varied text with the EICAR string near the end (a worst case for a prefix scan)."""
    block = b"".join(s.content for s in build_samples(64) if not s.malicious)
    body = (block * (BIG // len(block) + 1))[: BIG - 256]
    return body + build_samples(1)[0].content.ljust(256, b" ")


async def _rate(slug: str, artifacts: list[bytes], seconds: float, concurrency: int) -> float:
    async with create_backend(load_backend_class(slug), name=slug) as backend:
        done = 0
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker(offset: int) -> None:
            nonlocal done
            i = offset
            while time.perf_counter() < deadline:
                result = await backend.scan("bench", ArtifactType.FILE, artifacts[i % len(artifacts)], None, "side")
                assert result.bit, f"{slug} did not assert"
                done += 1
                i += concurrency

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    corpus = [s.content for s in build_samples(16)]
    big = [_big_artifact()]
    with tempfile.TemporaryDirectory() as workdir, Clamd(Path(workdir), stream_max_length="20M") as clamd:
        os.environ["CLAMD_SOCKET"] = str(clamd.socket)
        os.environ["RULES_DIR"] = str(ROOT / "tests" / "fixtures" / "yara" / "demo")
        os.environ["MULTI_BACKENDS"] = "clamav yara"
        print(f"{os.cpu_count()} CPUs, {args.concurrency} scans at a time, {args.seconds:g} s per figure")
        print("| backend | demo corpus (scans/s) | 10 MiB artifact (scans/s) |")
        print("| --- | ---: | ---: |")
        for slug in BACKENDS:
            small = asyncio.run(_rate(slug, corpus, args.seconds, args.concurrency))
            large = asyncio.run(_rate(slug, big, args.seconds, args.concurrency))
            print(f"| `{slug}` | {small:,.0f} | {large:,.1f} |")


if __name__ == "__main__":
    main()
