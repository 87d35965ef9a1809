"""polyswarm-client compatibility: engine-template engines and 1.x/2.x scanner styles run unchanged."""

from pathlib import Path

import pytest

from polyswarmclient.abstractmicroengine import AbstractMicroengine
from polyswarmclient.abstractscanner import AbstractScanner, ArtifactType, ScanMode, ScanResult
from polyswarmclient.backends import create_backend, load_backend_class

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
EICAR = ("X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*").encode()


@pytest.fixture
def acme_on_path(monkeypatch):
    """The engine-template package installed as top-level module `acme_eicar`."""
    monkeypatch.syspath_prepend(str(FIXTURES))


@pytest.fixture
def repo_on_path(monkeypatch):
    """The repository root importable, so `tests.fixtures.acme_eicar` resolves however pytest was started."""
    monkeypatch.syspath_prepend(str(ROOT))


async def test_engine_template_package_loads_by_module_slug(acme_on_path):
    """`--backend acme_eicar` picks the package's Microengine, which wraps its Scanner, and finds EICAR."""
    cls = load_backend_class("acme_eicar")
    assert cls.__name__ == "Microengine" and issubclass(cls, AbstractMicroengine)
    backend = create_backend(cls, name="acme_eicar", client=object(), testing=2, chains=("side",))
    assert backend.impl.testing == 2 and backend.impl.chains == {"side"}
    async with backend:
        bad = await backend.scan("g", ArtifactType.FILE, b"xx" + EICAR, {}, "side")
        good = await backend.scan("g", ArtifactType.FILE, b"just text", {}, "side")
    assert (bad.bit, bad.verdict) == (True, True)
    assert (good.bit, good.verdict) == (True, False)


async def test_engine_template_scan_sync_runs_in_a_worker_thread(acme_on_path, monkeypatch):
    """The template's Microengine -> Scanner(ScanMode.SYNC).scan_sync chain runs in a worker thread, and
    its setup on the backend's own loop: neither can block the engine's loop."""
    import threading

    import acme_eicar

    threads = {}
    real_scan_sync = acme_eicar.Scanner.scan_sync

    def scan_sync(self, *args):
        threads["scan"] = threading.current_thread()
        return real_scan_sync(self, *args)

    async def setup(self):
        threads["setup"] = threading.current_thread()
        return True

    monkeypatch.setattr(acme_eicar.Scanner, "scan_sync", scan_sync)
    monkeypatch.setattr(acme_eicar.Scanner, "setup", setup, raising=False)
    async with create_backend(acme_eicar.Microengine, name="acme_eicar", client=object()) as backend:
        assert (await backend.scan("g", ArtifactType.FILE, EICAR, {}, "side")).verdict is True
    assert threading.current_thread() not in threads.values()
    assert threads["scan"] is not threads["setup"]


async def test_engine_template_package_loads_by_module_colon_class(repo_on_path):
    """`--backend tests.fixtures.acme_eicar:Microengine` loads the same engine by module path."""
    cls = load_backend_class("tests.fixtures.acme_eicar:Microengine")
    backend = create_backend(cls)
    assert (await backend.scan("g", ArtifactType.URL, "http://x/" + EICAR.decode(), {}, "side")).verdict is True


async def test_template_scanner_called_directly_like_its_own_tests(repo_on_path):
    """An engine-template unit test that awaits Scanner().scan(guid, ArtifactType.FILE, ...) still passes."""
    from tests.fixtures.acme_eicar import Scanner

    result = await Scanner().scan("nocare", ArtifactType.FILE, EICAR, None, "home")
    assert result.verdict is True


async def test_one_x_three_argument_scan():
    """A 1.x scanner with scan(guid, content, chain) returning (bit, verdict, metadata) works."""

    class Old(AbstractScanner):
        async def scan(self, guid, content, chain):
            return True, content == b"bad", "old-style"

    result = await create_backend(Old).scan("g", ArtifactType.FILE, b"bad", {}, "side")
    assert result == ScanResult(bit=True, verdict=True, confidence=1.0, metadata="old-style")


async def test_two_x_overridden_scan_with_five_arguments():
    """A 2.x scanner that overrides scan() itself (the deprecated style) works."""

    class Direct(AbstractScanner):
        async def scan(self, guid, artifact_type, content, metadata, chain):
            return ScanResult(bit=True, verdict=artifact_type == ArtifactType.URL, metadata=chain)

    result = await create_backend(Direct).scan("g", ArtifactType.URL, "http://x", {}, "home")
    assert (result.verdict, result.metadata) == (True, "home")


async def test_sync_scanner_runs_in_a_thread():
    """A ScanMode.SYNC scanner's blocking scan_sync runs off the event loop."""
    import threading

    seen = {}

    class Blocking(AbstractScanner):
        def __init__(self):
            super().__init__(ScanMode.SYNC)

        def scan_sync(self, guid, artifact_type, content, metadata, chain):
            seen["thread"] = threading.current_thread()
            return ScanResult(bit=True, verdict=False)

    assert (await create_backend(Blocking).scan("g", ArtifactType.FILE, b"", {}, "side")).bit
    assert seen["thread"] is not threading.main_thread()


async def test_microengine_overriding_scan_without_scanner():
    """A 1.x Microengine that overrides scan(guid, content, chain) itself, with no scanner, works."""

    class Me(AbstractMicroengine):
        async def scan(self, guid, content, chain):
            return True, True, "from-microengine"

    result = await create_backend(Me).scan("g", ArtifactType.FILE, b"x", {}, "side")
    assert (result.bit, result.verdict, result.metadata) == (True, True, "from-microengine")


async def test_microengine_bid_overrides_old_and_new():
    """An engine's own bid() is used: 1.x bid(guid, chain) -> int and 2.x bid(guid, mask, ...) -> list."""

    class OldBid(AbstractMicroengine):
        async def bid(self, guid, chain):
            return 7

    class NewBid(AbstractMicroengine):
        def bid(self, guid, mask, verdicts, confidences, metadatas, chain):
            return [int(c * 100) for c, m in zip(confidences, mask, strict=True) if m]

    class NoBid(AbstractMicroengine):
        pass

    old = create_backend(OldBid, client=None)
    new = create_backend(NewBid, client=None)
    assert old.has_custom_bid and await old.custom_bid("g", [True], [True], [1.0], [""], "side") == 7
    assert await new.custom_bid("g", [True, False], [True, True], [0.5, 1.0], ["", ""], "side") == [50]
    assert not create_backend(NoBid).has_custom_bid


async def test_setup_returning_false_stops_start():
    """A scanner whose setup() returns False refuses to start with a clear error."""
    from polyswarmclient.errors import ScanError

    class Unready(AbstractScanner):
        async def setup(self):
            return False

    with pytest.raises(ScanError, match="setup"):
        await create_backend(Unready).setup()


def test_old_constructor_without_artifact_types():
    """An older template Microengine whose __init__ lacks artifact_types still constructs."""

    class Older(AbstractMicroengine):
        def __init__(self, client, testing=0, scanner=None, chains=None):
            super().__init__(client, testing, scanner, chains)

    assert create_backend(Older, testing=3, artifact_types=(ArtifactType.URL,)).impl.testing == 3


@pytest.mark.parametrize("value", [ArtifactType.URL, "url", "URL", 1])
def test_artifact_type_like_values(value):
    """ArtifactType-like values (enum, name, number) all mean the same artifact type."""
    assert ArtifactType.coerce(value) is ArtifactType.URL


def test_foreign_enum_artifact_type():
    """Another library's ArtifactType enum member is understood by name."""
    from enum import Enum

    class Foreign(Enum):
        FILE = 0
        URL = 1

    assert ArtifactType.coerce(Foreign.FILE) is ArtifactType.FILE
    assert ArtifactType.to_string(ArtifactType.URL) == "url"
