"""``microengine new NAME``: the files of a ready engine package, and writing them.

The package (``NAME/``) holds a ``pyproject.toml`` registering the scanner under the
``polyswarmclient.backends`` entry-point group (slug: the module name), the scanner module (an EICAR
detector to replace with real detection), a test that runs the engine on the embedded devnet with
``microengine --devnet``, and a README. The test passes as generated, installed or not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from polyswarmclient.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")


@dataclass(frozen=True)
class EngineNames:
    """The names of a new engine: its distribution (``acme-engine``) and module/slug (``acme_engine``)."""

    distribution: str
    module: str

    @classmethod
    def parse(cls, name: str) -> EngineNames:
        """From NAME; raises ``ConfigError`` unless it is lower-case letters and digits joined by - or _."""
        if not _NAME.match(name):
            raise ConfigError(
                f"engine name {name!r}: use lower-case letters and digits, words joined by - or _ "
                "(e.g. acme-engine), starting with a letter"
            )
        module = name.replace("-", "_")
        if module in {"polyswarmclient", "test", "tests"} or module in _RESERVED:
            raise ConfigError(f"engine name {name!r} would shadow the module {module!r}; choose another name")
        return cls(distribution=name.replace("_", "-"), module=module)


#: Module names an engine must not take (they would shadow what the engine itself imports).
_RESERVED = frozenset({"click", "aiohttp", "websockets", "yara", "json", "logging", "platform", "pytest"})

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{distribution}"
version = "0.1.0"
description = "A PolySwarm microengine for polyswarm-kit"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["polyswarm-kit"]

[project.optional-dependencies]
test = ["pytest", "polyswarm-kit[devnet]"]

# `microengine --backend {module}` finds the scanner through this entry point once installed.
[project.entry-points."polyswarmclient.backends"]
{module} = "{module}:Scanner"

[tool.setuptools]
packages = ["{module}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["."]
"""

_SCANNER = '''\
"""{distribution}: a PolySwarm microengine scanner.

It flags the EICAR test file: replace ``scan_sync`` with your own detection. The engine around it
(bounties, bids, commit, reveal, settle) is polyswarm-kit's `microengine`.
"""

import json

from polyswarmclient.abstractscanner import AbstractScanner, ArtifactType, ScanMode, ScanResult

# The EICAR test string in two halves, so that this file itself is not flagged by a virus scanner.
EICAR = rb"X5O!P%@AP[4\\PZX54(P^)7CC)7}}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Scanner(AbstractScanner):
    """Asserts on every file: malicious when it holds the EICAR test string."""

    def __init__(self):
        super().__init__(ScanMode.SYNC)  # scan_sync runs in a worker thread

    async def setup(self):
        """Runs once before the first bounty: load signatures, open connections. False stops the engine."""
        return True

    async def teardown(self):
        """Runs once at shutdown."""

    def scan_sync(self, guid, artifact_type, content, metadata, chain):
        if artifact_type != ArtifactType.FILE:
            return ScanResult()  # bit=False: no assertion on this artifact
        malicious = EICAR in content
        return ScanResult(
            bit=True,
            verdict=malicious,
            confidence=1.0,  # scales the bid between the bounty's minimum and maximum
            metadata=json.dumps({{"malware_family": "EICAR" if malicious else ""}}),
        )


# To bid your own way, define a polyswarm-client 2.x bid strategy here; the engine then uses it
# unless --bid-strategy is given:
#
# from polyswarmclient.bidstrategy import BidStrategyBase
#
# class BidStrategy(BidStrategyBase):
#     def __init__(self):
#         super().__init__(min_bid_multiplier=2, max_bid_multiplier=8)
'''

_TEST = '''\
"""{distribution} against the embedded devnet: the engine gets every bounty right and is paid."""

import os
import re
import subprocess
import sys
from pathlib import Path

from {module} import EICAR, Scanner
from polyswarmclient.abstractscanner import ArtifactType

PROJECT = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"^summary: bounties seen (\\d+), asserted (\\d+), correct (\\d+), wrong (\\d+);", re.M)


def test_scanner_flags_eicar_and_passes_other_files():
    """A file holding EICAR is malicious, another file benign, and both are asserted on."""
    scanner = Scanner()
    flagged = scanner.scan_sync("guid", ArtifactType.FILE, EICAR + b"\\n", None, "side")
    passed = scanner.scan_sync("guid", ArtifactType.FILE, b"hello", None, "side")
    assert (flagged.bit, flagged.verdict) == (True, True)
    assert (passed.bit, passed.verdict) == (True, False)


def test_engine_wins_its_devnet_bounties(tmp_path):
    """`microengine --devnet --backend {module} --testing 2` exits 0 with both bounties called right."""
    microengine = Path(sys.executable).parent / "microengine"
    env = {{k: v for k, v in os.environ.items() if k not in ("BACKEND", "TESTING", "DEVNET")}}
    result = subprocess.run(
        [str(microengine), "--devnet", "--backend", "{module}", "--app-dir", str(PROJECT), "--testing", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    summary = SUMMARY.search(result.stdout)
    assert summary, result.stdout
    seen, asserted, correct, wrong = map(int, summary.groups())
    assert (asserted, wrong) == (2, 0) and correct == 2, result.stdout
'''

_README = """\
# {distribution}

A PolySwarm microengine for [polyswarm-kit](https://github.com/polyswarm). The scanner is
`{module}/__init__.py`; the engine around it (bounties, bids, commit, reveal, settle) is
polyswarm-kit's `microengine`.

## Try it

```bash
pip install -e '.[test]'                                 # registers the backend slug {module}
pytest                                                   # runs the engine on the embedded devnet
microengine --devnet --backend {module} --testing 2     # the same run, with one line per bounty
microengine evaluate --backend {module} ./corpus         # precision, recall, scan times, NCT on a labelled corpus
```

Without installing, run from this directory: `microengine --backend {module}:Scanner ...` looks
here first (`--app-dir`, default `.`).

A corpus for `microengine evaluate` is a directory with the samples and a `labels.csv`, one line per
sample: `path/relative/to/the/directory,malicious` or `...,benign`. Without a corpus, the built-in
demo corpus is used.

## Run it

```bash
microengine --backend {module} --polyswarmd-addr HOST:PORT --keyfile KEYFILE --password-file PASSWORD_FILE
```

See polyswarm-kit's docs/backends.md for the scanner API, bids and where your code runs.
"""


def engine_files(names: EngineNames) -> dict[str, str]:
    """Relative path -> text of every file of the new engine package."""
    fields = {"distribution": names.distribution, "module": names.module}
    return {
        "pyproject.toml": _PYPROJECT.format(**fields),
        f"{names.module}/__init__.py": _SCANNER.format(**fields),
        f"tests/test_{names.module}.py": _TEST.format(**fields),
        "README.md": _README.format(**fields),
    }


def write_engine(name: str, parent: Path) -> tuple[EngineNames, Path]:
    """Write the package ``parent``/NAME; raises ``ConfigError`` when NAME is unusable or already exists."""
    names = EngineNames.parse(name)
    root = parent / names.distribution
    if root.exists():
        raise ConfigError(f"{root} already exists; choose another name or directory")
    try:
        for relative, text in engine_files(names).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {root}: {exc.strerror or exc}") from None
    return names, root


__all__ = ["EngineNames", "engine_files", "write_engine"]
