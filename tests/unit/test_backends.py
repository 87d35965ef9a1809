"""Backends: found by slug through entry points or module:Class, with helpful errors; built-in verdicts."""

import importlib.metadata
import json
import sys
import textwrap

import pytest

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
    assert "Did you mean 'eicar'?" in message and "eicar, scratch" in message and "\n" not in message
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
