"""An engine made the engine-template way, pip-installed into this environment, runs unchanged on the devnet.

The package is laid out as polyswarm/engine-template lays one out: its own ``setup.py`` with
``install_requires=['polyswarm-artifact', 'polyswarm-client']`` and no entry point, a package whose
``__init__`` exports ``Scanner`` (SYNC, async ``setup``/``teardown``) and a ``BidStrategyBase`` subclass,
and the template's imports. It is installed with ``pip install`` (build isolation and all); a
constraint pins polyswarm-client to the stand-in's version, so pip can never fetch the real one into
this environment: the stand-in (packaging/polyswarm-client) must be what satisfies the requirement.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import polyswarmclient
from tests.e2e.harness import ENGINE_READY, Cli, Devnet, Process, command, nct_text, posted_guids

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "acme_templateengine"
DISTRIBUTION = "acme-templateengine"

SETUP_PY = f"""
from setuptools import find_packages, setup

setup(
    name="{DISTRIBUTION}",
    version="0.1.0",
    packages=find_packages("src"),
    package_dir={{"": "src"}},
    install_requires=["polyswarm-artifact", "polyswarm-client"],
)
"""

ENGINE = """
import logging
import platform

from polyswarmartifact import ArtifactType
from polyswarmartifact.schema.verdict import Verdict

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult, ScanMode
from polyswarmclient.bidstrategy import BidStrategyBase

logger = logging.getLogger(__name__)

# Two halves, so that this file does not itself look like the EICAR test file.
EICAR = ("X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode("ascii")


class BidStrategy(BidStrategyBase):
    def __init__(self):
        super().__init__(min_bid_multiplier=8, max_bid_multiplier=8)


class Scanner(AbstractScanner):
    def __init__(self):
        super(Scanner, self).__init__(ScanMode.SYNC)
        self.ready = False

    async def setup(self):
        self.ready = True
        return True

    async def teardown(self):
        self.ready = False

    def scan_sync(self, guid, artifact_type, content, metadata, chain):
        if artifact_type == ArtifactType.URL:
            content = content.encode("utf-8")
        elif artifact_type != ArtifactType.FILE:
            return ScanResult()
        bit = self.ready
        malicious = EICAR in content
        verdict = Verdict().set_malware_family("Acme.EICAR" if malicious else "").set_scanner(
            operating_system=platform.system(), architecture=platform.machine(), vendor_version="1.0.0", version="0.1.0"
        )
        return ScanResult(bit, malicious, 1.0, metadata=verdict.json())
"""


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def installed_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The template-shaped package, pip-installed for the module and uninstalled after it."""
    try:
        stand_in = importlib.metadata.distribution("polyswarm-client")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("polyswarm-client (the stand-in) is not installed: pip install ./packaging/polyswarm-client")
    assert "polyswarm-kit" in (stand_in.requires or []), "a foreign polyswarm-client is installed"
    source = tmp_path_factory.mktemp("engine")
    (source / "setup.py").write_text(SETUP_PY)
    (source / "src" / PACKAGE).mkdir(parents=True)
    (source / "src" / PACKAGE / "__init__.py").write_text(ENGINE)
    constraints = source / "constraints.txt"
    constraints.write_text(f"polyswarm-client=={stand_in.version}\n")
    result = _pip("install", "-c", str(constraints), str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield source
    finally:
        _pip("uninstall", "-y", DISTRIBUTION)


def test_installing_the_engine_keeps_the_toolkit_whole(installed_engine: Path) -> None:
    """After the plain pip install, polyswarm-client is still the stand-in, polyswarmclient is still ours,
    and microengine still starts and lists its backends."""
    show = _pip("show", "polyswarm-client")
    assert "Requires: polyswarm-kit" in show.stdout, show.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import polyswarmclient, aiohttp; print(polyswarmclient.__file__, aiohttp.__version__)"],
        capture_output=True,
        text=True,
        cwd=installed_engine.parent,
    )
    where, aiohttp_version = probe.stdout.split()
    assert Path(where) == Path(polyswarmclient.__file__) and not aiohttp_version.startswith("3.7")
    listed = subprocess.run([*command("microengine"), "--list-backends"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "eicar" in listed.stdout.split(), listed.stderr


def test_template_engine_runs_on_the_devnet_by_its_package_name(
    installed_engine: Path, devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path
) -> None:
    """`microengine --backend acme_templateengine` (no entry point) asserts the demo bounty right, reveals the
    Verdict metadata it built, and is paid."""
    keystore = "spare4_keyfile"
    before = devnet.balances(keystore)
    args = ["--backend", PACKAGE, "--block-time", str(devnet.options.block_time), "--testing", "1"]
    engine = cli.start("microengine", *args, keystore=keystore, name="engine-template")
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=12, artifacts=2)
    engine.expect_exit(0, timeout=120)
    ambassador.expect_exit(0, timeout=60)
    [guid] = posted_guids(ambassador)
    mine = devnet.assertion_of(guid, keystore)
    assert mine["nonce"] != "0" and mine["verdicts"] == [True, False], mine
    assert "Acme.EICAR" in str(mine["metadata"])
    gained = devnet.nct(keystore) - before.side
    assert gained == devnet.settlement(guid).net(keystore) > 0, f"gained {nct_text(gained)}"
