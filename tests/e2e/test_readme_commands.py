"""The README's two quickstart commands work verbatim on a fresh copy of the repository (slow: -m e2e).

Each command is read from the fenced ```bash block right after its marker comment in README.md
(``<!-- quickstart:run -->`` and ``<!-- quickstart:test -->``) and run as written with ``bash -c`` in a
fresh copy of the working tree (without .git, virtualenvs and caches, so uncommitted files are tested
too). Each command creates its own virtualenv and pip-installs the project into it.

The test command runs ``pytest``, which would run this test again: to avoid that recursion and doubling
CI time, it runs with ``PYTEST_ADDOPTS='-q -p no:cacheprovider tests/unit/test_amounts.py'``, so the inner
pytest only proves that the install and the test configuration work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: Never copied into the fresh tree: version control, virtualenvs, caches and build output.
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    ".tox",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "*.egg-info",
    "dist",
    ".polyswarm-state",
    ".tools",  # anvil from npm, for the anvil tier
)
#: Environment a developer may have set that would change what the commands do.
CLEARED = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTEST_ADDOPTS",
    "POLYSWARMD_ADDR",
    "KEYFILE",
    "PASSWORD",
    "PASSWORD_FILE",
    "API_KEY",
    "BACKEND",
    "TESTING",
    "CHAINS",
    "STATE_DIR",
    "DEVNET",
    "DEVNET_PORT",
    "DEVNET_BLOCK_TIME",
)


def quickstart(name: str) -> str:
    """The command in the ```bash block directly after ``<!-- quickstart:NAME -->`` in README.md."""
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- quickstart:{name} -->\s*```bash\n(?P<command>.*?)\n```", text, re.DOTALL)
    assert found, f"README.md has no ```bash block right after <!-- quickstart:{name} -->"
    return found["command"].strip()


def fresh_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name / "polyswarm-kit"
    shutil.copytree(ROOT, target, ignore=IGNORED, symlinks=True)
    # build/ is ignored by git except the compiled contracts, which the package needs
    shutil.rmtree(target / "build", ignore_errors=True)
    return target


def run_verbatim(command: str, cwd: Path, timeout: float, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environ.update(env)
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quickstart_commands_are_the_documented_ones() -> None:
    """The README carries both quickstart commands: a demo run and the test suite, each in a fresh venv."""
    run, test = quickstart("run"), quickstart("test")
    assert "python3 -m venv .venv" in run and "microengine --devnet" in run
    assert "python3 -m venv .venv" in test and run != test and test.rstrip().endswith("pytest")


def test_run_command_works_verbatim_on_a_fresh_copy(tmp_path: Path) -> None:
    """The run command installs the package with the devnet extra and the demo settles two bounties."""
    tree = fresh_copy(tmp_path, "run")
    result = run_verbatim(quickstart("run"), tree, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert sum(": verdicts [" in line for line in lines) == 2, result.stdout[-3000:]
    assert any(line.startswith("summary: bounties seen 2, asserted 2, correct 2") for line in lines), lines[-5:]


def test_test_command_works_verbatim_on_a_fresh_copy(tmp_path: Path) -> None:
    """The test command installs the test extra editable and pytest collects and passes (a small subset)."""
    tree = fresh_copy(tmp_path, "test")
    result = run_verbatim(
        quickstart("test"),
        tree,
        timeout=1200,
        PYTEST_ADDOPTS="-q -p no:cacheprovider tests/unit/test_amounts.py",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-3000:]
    assert "failed" not in result.stdout.splitlines()[-1]
