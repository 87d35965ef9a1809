"""Backends: found by slug through entry points or module:Class, with helpful errors; built-in verdicts; run
off the caller's event loop."""

import asyncio
import importlib.metadata
import json
import sys
import textwrap
import threading

import pytest

from polyswarmclient.abstractmicroengine import AbstractMicroengine
from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend, list_backends, load_backend_class, loader
from polyswarmclient.backends.eicar import EICAR, EicarScanner
from polyswarmclient.backends.scratch import ScratchScanner
from polyswarmclient.errors import BackendNotFound, ConfigError


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A third-party backend module on sys.path, registered under the slug 'thirdparty'."""
    (tmp_path / "thirdparty_engine.py").write_text(
        textwrap.dedent(
            """
            from polyswarmclient.abstractscanner import AbstractScanner, ScanResult

            class Plugin(AbstractScanner):
                async def scan_async(self, guid, artifact_type, content, metadata, chain):
                    return ScanResult(bit=True, verdict=b"bad" in content)
            """
        )
    )
    (tmp_path / "broken_engine.py").write_text("import definitely_not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    real = importlib.metadata.entry_points

    def fake_entry_points(**kwargs):
        found = list(real(**kwargs))
        if kwargs.get("group") == loader.GROUP:
            found.append(importlib.metadata.EntryPoint("thirdparty", "thirdparty_engine:Plugin", loader.GROUP))
            found.append(importlib.metadata.EntryPoint("broken", "broken_engine:Plugin", loader.GROUP))
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    yield
    for name in ("thirdparty_engine", "broken_engine"):
        sys.modules.pop(name, None)


def test_builtins_are_listed():
    """--list-backends shows the built-in eicar and scratch backends."""
    assert {"eicar", "scratch"} <= set(list_backends())


def test_builtin_slugs_resolve():
    """--backend eicar and --backend scratch load the bundled scanners."""
    assert load_backend_class("eicar") is EicarScanner
    assert load_backend_class("scratch") is ScratchScanner


def test_installed_package_registers_builtins_as_entry_points():
    """When polyswarm-kit is installed, eicar and scratch come from its entry points like any plugin."""
    try:
        importlib.metadata.distribution("polyswarm-kit")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("polyswarm-kit is not installed (pip install -e .)")
    names = {ep.name for ep in importlib.metadata.entry_points(group=loader.GROUP)}
    assert {"eicar", "scratch"} <= names


def test_third_party_entry_point_is_found(plugin_module):
    """A backend another package registers in the entry-point group loads by its slug and is listed."""
    assert "thirdparty" in list_backends()
    assert load_backend_class("thirdparty").__name__ == "Plugin"


def test_entry_point_that_fails_to_import_says_so(plugin_module):
    """A registered backend whose dependency is missing fails with the registration and the import error."""
    with pytest.raises(BackendNotFound, match="registered as broken_engine:Plugin but failed to load"):
        load_backend_class("broken")


def test_module_colon_class(plugin_module):
    """--backend module:Class imports exactly that class."""
    assert load_backend_class("thirdparty_engine:Plugin").__name__ == "Plugin"


def test_module_colon_class_errors_are_precise(plugin_module):
    """module:Class errors say whether the module, a dependency of it, or the attribute is missing."""
    with pytest.raises(BackendNotFound, match="no module named 'nope_module'"):
        load_backend_class("nope_module:Thing")
    with pytest.raises(BackendNotFound, match="needs 'definitely_not_installed_dependency'"):
        load_backend_class("broken_engine:Plugin")
    with pytest.raises(BackendNotFound, match="has no attribute 'Missing'"):
        load_backend_class("thirdparty_engine:Missing")
    with pytest.raises(BackendNotFound, match="module:Class"):
        load_backend_class("thirdparty_engine:")


def test_wrong_slug_suggests_the_closest(plugin_module):
    """A typo gets one line with 'did you mean' and the installed slugs; it is a usage error (exit 2)."""
    with pytest.raises(BackendNotFound) as info:
        load_backend_class("eicr")
    message = str(info.value)
    assert "Did you mean 'eicar'?" in message and "\n" not in message
    installed = message.split("Installed backends: ", 1)[1].split(";", 1)[0].split(", ")
    assert {"eicar", "scratch", "clamav", "yara", "multi"} <= set(installed)
    assert info.value.exit_code == 2


def test_wrong_slug_without_close_match():
    """A name nothing resembles still lists what is installed."""
    with pytest.raises(BackendNotFound, match="Installed backends: .*eicar") as info:
        load_backend_class("zzzzzzzz")
    assert "Did you mean" not in str(info.value)


def test_a_non_scanner_is_refused(plugin_module):
    """Pointing --backend at something that is not a scanner class is refused up front."""
    with pytest.raises(BackendNotFound, match="not a class"):
        load_backend_class("json:dumps")
    with pytest.raises(BackendNotFound, match="no scan"):
        load_backend_class("json:JSONDecoder")


def test_arbiter_group_has_its_own_slugs():
    """group=ARBITER_GROUP finds the arbiter's built-ins; the microengine group does not list them."""
    from polyswarmclient.backends.verbatim import VerbatimArbiter

    assert load_backend_class("verbatim", loader.ARBITER_GROUP) is VerbatimArbiter
    assert "verbatim" not in list_backends()
    with pytest.raises(BackendNotFound, match="unknown arbiter backend 'verbatm'. Did you mean 'verbatim'"):
        load_backend_class("verbatm", loader.ARBITER_GROUP)


def test_arbiter_group_does_not_take_engine_packages(plugin_module):
    """Only the microengine group resolves a bare module name; the arbiter's asks for module:Class."""
    assert load_backend_class("thirdparty_engine:Plugin", loader.ARBITER_GROUP).__name__ == "Plugin"
    with pytest.raises(BackendNotFound, match="unknown arbiter backend 'thirdparty_engine'"):
        load_backend_class("thirdparty_engine", loader.ARBITER_GROUP)


def test_backend_that_cannot_be_created_is_a_config_error():
    """A backend whose constructor raises is reported as a configuration error naming it."""

    class Needy(EicarScanner):
        def __init__(self):
            raise RuntimeError("RULES_DIR is not set")

    with pytest.raises(ConfigError, match="RULES_DIR is not set"):
        create_backend(Needy, name="needy")


async def test_eicar_detects_the_test_string_as_substring():
    """The eicar backend calls a file malicious iff it contains the EICAR string, and benign otherwise."""
    scanner = create_backend(EicarScanner)
    bad = await scanner.scan("g", ArtifactType.FILE, b"prefix " + EICAR + b" suffix", {}, "side")
    good = await scanner.scan("g", ArtifactType.FILE, b"hello world", {}, "side")
    assert (bad.bit, bad.verdict) == (True, True) and (good.bit, good.verdict) == (True, False)
    assert json.loads(bad.metadata)["malware_family"] == "EICAR-Test-File"
    assert json.loads(good.metadata)["malware_family"] == ""
    assert "scanner" in json.loads(bad.metadata)


async def test_eicar_scans_url_artifacts():
    """URL artifacts (text) are scanned too."""
    scanner = create_backend(EicarScanner)
    url = "http://example.test/?q=" + EICAR.decode()
    assert (await scanner.scan("g", ArtifactType.URL, url, {}, "side")).verdict is True
    assert (await scanner.scan("g", "url", "http://example.test/", {}, "side")).verdict is False


async def test_scratch_asserts_benign_on_everything():
    """The scratch backend asserts on every artifact and calls it benign, even EICAR."""
    result = await create_backend(ScratchScanner).scan("g", ArtifactType.FILE, EICAR, {}, "side")
    assert (result.bit, result.verdict) == (True, False)
    json.loads(result.metadata)


def test_eicar_string_is_not_stored_whole_in_the_source():
    """The repository's source does not contain the EICAR string itself, so AV on a checkout stays quiet."""
    import polyswarmclient.backends.eicar as module

    with open(module.__file__, "rb") as f:
        assert EICAR not in f.read()


# --- where backend code runs -----------------------------------------------------------------------


class Recording(AbstractScanner):
    """Notes the thread and event loop each of its calls runs on; ``gate`` holds a scan of b"block"."""

    def __init__(self, mode=ScanMode.ASYNC):
        super().__init__(mode)
        self.seen: dict[str, tuple[threading.Thread, asyncio.AbstractEventLoop | None]] = {}
        self.gate = threading.Event()
        self.connection: object | None = None

    def _note(self, what):
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        self.seen[what] = (threading.current_thread(), loop)

    async def setup(self):
        self._note("setup")
        self.connection = object()  # state kept from setup to every scan
        return True

    async def teardown(self):
        self._note("teardown")

    def _answer(self, content):
        if content == b"block":
            self.gate.wait(5)  # blocks whatever runs it, never yields
        return ScanResult(bit=True, verdict=self.connection is not None)

    async def scan_async(self, guid, artifact_type, content, metadata, chain):
        self._note("scan")
        return self._answer(content)

    def scan_sync(self, guid, artifact_type, content, metadata, chain):
        self._note("scan")
        return self._answer(content)


def recording(mode):
    class InMode(Recording):
        def __init__(self):
            super().__init__(mode)

    return InMode


async def test_async_backend_runs_on_its_own_loop_from_setup_to_teardown():
    """setup, scan_async and teardown all run on one loop of the backend's own thread, never the caller's."""
    backend = create_backend(Recording, name="recording")
    async with backend:
        assert (await backend.scan("g", ArtifactType.FILE, b"x", {}, "side")).verdict is True
    seen = backend.impl.seen
    threads = {thread for thread, _ in seen.values()}
    loops = {loop for _, loop in seen.values()}
    assert set(seen) == {"setup", "scan", "teardown"}
    assert len(threads) == 1 and threading.current_thread() not in threads
    assert len(loops) == 1 and asyncio.get_running_loop() not in loops
    assert not next(iter(threads)).is_alive()  # stopped at teardown


async def test_sync_scan_runs_in_a_worker_thread_not_on_any_loop():
    """A ScanMode.SYNC backend's scan_sync runs in a thread of its own, with no event loop to block."""
    backend = create_backend(recording(ScanMode.SYNC), name="sync")
    async with backend:
        await backend.scan("g", ArtifactType.FILE, b"x", {}, "side")
    (scan_thread, scan_loop), (setup_thread, _) = backend.impl.seen["scan"], backend.impl.seen["setup"]
    assert scan_loop is None and scan_thread not in (threading.current_thread(), setup_thread)


@pytest.mark.parametrize("mode", [ScanMode.ASYNC, ScanMode.SYNC])
async def test_a_scan_that_never_yields_still_times_out(mode):
    """The caller's timeout fires on time although the backend blocks; the caller's loop keeps running."""
    backend = create_backend(recording(mode), name="blocking")
    async with backend:
        loop = asyncio.get_running_loop()
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await backend.scan("g", ArtifactType.FILE, b"block", {}, "side")
        elapsed = loop.time() - started
        ticker.cancel()
        backend.impl.gate.set()
    assert elapsed < 1.0 and ticks >= 5


async def test_an_abandoned_scan_says_when_it_really_ends():
    """A scan given up on keeps running; its job says so, and calls back on the caller's loop when it returns."""
    backend = create_backend(recording(ScanMode.SYNC), name="blocking")
    job = backend.start_scan("g", ArtifactType.FILE, b"block", {}, "side")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await job.result()
    assert not job.finished
    ended = asyncio.Event()
    job.when_finished(ended.set)
    backend.impl.gate.set()
    await asyncio.wait_for(ended.wait(), 5)
    assert job.finished
    await backend.teardown()


async def test_scan_errors_reach_the_caller():
    """An exception raised by backend code on its loop or thread is raised to the caller."""

    class Broken(AbstractScanner):
        async def scan_async(self, guid, artifact_type, content, metadata, chain):
            raise ValueError("no rules loaded")

    async with create_backend(Broken) as backend:
        with pytest.raises(ValueError, match="no rules loaded"):
            await backend.scan("g", ArtifactType.FILE, b"x", {}, "side")


class FakeEngineClient:
    """A client whose coroutine methods only work on the loop it was made for (like an aiohttp session)."""

    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.address = "0xabc"

    async def nct_balance(self, chain, address=None):
        assert asyncio.get_running_loop() is self.loop, "called on a foreign loop"
        return 42


async def test_backend_awaits_the_client_on_the_engine_loop():
    """An engine that awaits self.client from its own loop gets the answer computed on the engine's loop."""

    class UsesClient(AbstractMicroengine):
        async def scan(self, guid, artifact_type, content, metadata, chain):
            balance = await self.client.nct_balance(chain)
            return ScanResult(bit=True, verdict=False, metadata=f"{self.client.address} {balance}")

    async with create_backend(UsesClient, client=FakeEngineClient()) as backend:
        result = await backend.scan("g", ArtifactType.FILE, b"x", {}, "side")
    assert result.metadata == "0xabc 42"


async def test_a_bid_that_blocks_falls_back_to_the_strategy(monkeypatch, caplog):
    """An engine's bid() that does not answer in time is ignored (None: --bid-strategy decides), with a warning."""
    import polyswarmclient.backends as backends

    gate = threading.Event()

    class SlowBid(AbstractMicroengine):
        async def bid(self, guid, chain):
            gate.wait(5)
            return 7

    monkeypatch.setattr(backends, "BID_TIMEOUT", 0.1)
    async with create_backend(SlowBid, name="slowbid") as backend:
        assert await backend.custom_bid("guid-1", [True], [True], [1.0], [""], "side") is None
        gate.set()
    assert "slowbid" in caplog.text and "guid-1" in caplog.text and "bid-strategy" in caplog.text
