"""The ``yara`` backend with real yara-python and the rules under tests/fixtures/yara."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend, load_backend_class
from polyswarmclient.backends.arbiter_loader import load_arbiter_backend_class
from polyswarmclient.backends.yara_rules import YaraScanner
from polyswarmclient.errors import ConfigError
from polyswarmclient.samples import EICAR, build_samples

RULES = Path(__file__).resolve().parents[1] / "fixtures" / "yara"


async def test_demo_corpus_gets_every_verdict_right_and_names_the_rule(monkeypatch) -> None:
    """`--backend yara` with RULES_DIR=demo rules: EICAR samples malicious (family from the rule's meta, the
    matched rule named), benign samples benign with no rule; every sample asserted."""
    monkeypatch.setenv("RULES_DIR", str(RULES / "demo"))
    async with create_backend(load_backend_class("yara"), name="yara") as backend:
        for sample in build_samples(16):
            result = await backend.scan("g", ArtifactType.FILE, sample.content, None, "side")
            meta = json.loads(result.metadata)
            assert (result.bit, result.verdict) == (True, sample.malicious), sample.name
            if sample.malicious:
                assert (meta["malware_family"], meta["rules"]) == ("EICAR-Test-File", ["EICAR_Test_File"])
            else:
                assert (meta["malware_family"], meta["rules"]) == ("", [])


async def test_url_artifacts_are_matched_as_text() -> None:
    """A URL artifact (text) carrying the EICAR string matches too."""
    scanner = YaraScanner(RULES / "demo")
    await scanner.setup()
    result = await scanner.scan("g", ArtifactType.URL, "http://example.invalid/?" + EICAR.decode(), None, "side")
    assert result.verdict is True


async def test_a_rule_that_does_not_compile_names_its_file_and_line() -> None:
    """One bad rule among good ones stops setup with one line: the file, the line and yara's reason."""
    bad = RULES / "broken" / "bad.yar"
    with pytest.raises(ConfigError) as info:
        await YaraScanner(RULES / "broken").setup()
    assert str(info.value) == f"yara rule {bad}:6: syntax error, unexpected <and>"


async def test_an_empty_rules_dir_is_a_configuration_error(tmp_path: Path) -> None:
    """RULES_DIR without any .yar/.yara file is refused at setup, naming the directory."""
    (tmp_path / "notes.txt").write_text("no rules here")
    with pytest.raises(ConfigError, match=f"RULES_DIR {tmp_path} holds no .yar or .yara files"):
        await YaraScanner(tmp_path).setup()


async def test_a_missing_or_unset_rules_dir_is_a_configuration_error(tmp_path: Path, monkeypatch) -> None:
    """RULES_DIR pointing nowhere, or not set at all, is refused at setup with the fix in the message."""
    with pytest.raises(ConfigError, match="is not a directory"):
        await YaraScanner(tmp_path / "missing").setup()
    monkeypatch.delenv("RULES_DIR", raising=False)
    with pytest.raises(ConfigError, match="needs RULES_DIR"):
        await YaraScanner().setup()


async def test_same_rule_name_in_two_files_compiles(tmp_path: Path) -> None:
    """Each file compiles in its own namespace, so two files may both define a rule named Same."""
    (tmp_path / "a.yar").write_text('rule Same { strings: $a = "alpha" condition: $a }\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yara").write_text('rule Same { strings: $b = "beta" condition: $b }\n')
    scanner = YaraScanner(tmp_path)
    await scanner.setup()
    result = await scanner.scan("g", ArtifactType.FILE, b"beta", None, "side")
    assert result.verdict is True and json.loads(result.metadata)["rules"] == ["Same"]


async def test_yara_is_an_arbiter_backend_too(monkeypatch) -> None:
    """`arbiter --backend yara` loads the same scanner, which votes on every demo sample."""
    monkeypatch.setenv("RULES_DIR", str(RULES / "demo"))
    async with create_backend(load_arbiter_backend_class("yara"), name="yara") as backend:
        votes = [
            (await backend.scan("g", ArtifactType.FILE, s.content, None, "side")).verdict for s in build_samples(4)
        ]
    assert votes == [True, False, True, False]
