"""``yara``: the artifact is matched against every YARA rule under ``RULES_DIR``; malicious on any match.

``setup()`` compiles every ``.yar`` and ``.yara`` file under ``RULES_DIR`` (recursively, each file in its
own namespace, so two files may use the same rule name) once; scans only match. A missing or empty
``RULES_DIR``, an unreadable file and a rule that does not compile are configuration errors (exit 2)
whose one line names the file and, for a rule, the line. The verdict's metadata names the matched rules
in ``rules``; ``malware_family`` is the first match's ``malware_family`` (or ``family``) meta value, else
its rule name. Scans run in a worker thread (``ScanMode.SYNC``); yara releases the GIL while it matches.

Needs yara-python: ``pip install 'polyswarm-kit[yara]'``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult
from polyswarmclient.backends.metadata import verdict_metadata
from polyswarmclient.errors import ConfigError

#: File name suffixes compiled from RULES_DIR.
SUFFIXES = (".yar", ".yara")
#: Seconds one match may take before yara gives up (the engine's own deadline is usually shorter).
MATCH_TIMEOUT = 60

_LOCATED = re.compile(r"^(?P<file>.+)\((?P<line>\d+)\): (?P<message>.*)$", re.DOTALL)


def _yara() -> Any:
    try:
        import yara
    except ImportError:
        raise ConfigError("the yara backend needs yara-python: pip install 'polyswarm-kit[yara]'") from None
    return yara


def rule_files(rules_dir: Path) -> list[Path]:
    """Every rule file under ``rules_dir``, sorted; a ConfigError when there is no such directory or none."""
    if not rules_dir.is_dir():
        raise ConfigError(f"RULES_DIR {rules_dir} is not a directory: point it at a directory of .yar/.yara files")
    files = sorted(p for p in rules_dir.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise ConfigError(f"RULES_DIR {rules_dir} holds no .yar or .yara files")
    return files


def compile_error(exc: Exception) -> ConfigError:
    """yara's ``file(line): message`` as one line, ``yara rule file:line: message``."""
    text = " ".join(str(exc).split())
    located = _LOCATED.match(text)
    if located is None:
        return ConfigError(f"yara rules do not compile: {text}")
    return ConfigError(f"yara rule {located['file']}:{located['line']}: {located['message']}")


def compile_rules(rules_dir: Path) -> Any:
    """The compiled rules of every file under ``rules_dir`` (a ``yara.Rules``), or a ConfigError."""
    yara = _yara()
    files = rule_files(rules_dir)
    namespaces = {str(path.relative_to(rules_dir)): str(path) for path in files}
    try:
        return yara.compile(filepaths=namespaces)
    except yara.SyntaxError as exc:
        raise compile_error(exc) from None
    except yara.Error as exc:
        # yara names the problem but not always the file: find the first file that fails alone
        for path in files:
            try:
                yara.compile(filepath=str(path))
            except yara.SyntaxError as inner:
                raise compile_error(inner) from None
            except yara.Error as inner:
                raise ConfigError(f"yara rule file {path}: {inner}") from None
        raise ConfigError(f"yara rules under {rules_dir} do not compile: {exc}") from None


def family_of_match(match: Any) -> str:
    meta = getattr(match, "meta", {}) or {}
    for key in ("malware_family", "family"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return str(match.rule)


class YaraScanner(AbstractScanner):
    """Matches each artifact against the rules compiled from ``rules_dir`` (default: ``$RULES_DIR``)."""

    def __init__(self, rules_dir: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(ScanMode.SYNC, **kwargs)
        configured = rules_dir if rules_dir is not None else os.environ.get("RULES_DIR", "").strip()
        self.rules_dir = Path(configured) if configured else None
        self.rules: Any = None
        self.yara_version: str | None = None

    async def setup(self) -> bool:
        """Compile the rules once (ConfigError, exit 2, when RULES_DIR is unset, empty or has a bad rule)."""
        if self.rules_dir is None:
            raise ConfigError("the yara backend needs RULES_DIR: a directory of .yar/.yara rule files")
        self.rules = compile_rules(self.rules_dir)
        self.yara_version = str(getattr(_yara(), "__version__", "")) or None
        return True

    def scan_sync(self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str) -> ScanResult:
        if self.rules is None:
            raise RuntimeError("YaraScanner.setup() has not run")
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        matches = self.rules.match(data=data, timeout=MATCH_TIMEOUT)
        names = [str(m.rule) for m in matches]
        family = family_of_match(matches[0]) if matches else ""
        return ScanResult(
            bit=True,
            verdict=bool(matches),
            confidence=1.0,
            metadata=verdict_metadata(family, vendor_version=self.yara_version, rules=names),
        )


__all__ = ["YaraScanner", "compile_rules", "rule_files"]
