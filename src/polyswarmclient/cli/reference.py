"""Render the option reference of every command from the click definitions themselves.

``docs/configuration.md`` carries this rendering between two markers; a test keeps them equal, so the
documentation cannot drift from the code. Regenerate with::

    python -m polyswarmclient.cli.reference --write docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

BEGIN = "<!-- BEGIN GENERATED OPTIONS (python -m polyswarmclient.cli.reference --write docs/configuration.md) -->"
END = "<!-- END GENERATED OPTIONS -->"


def _commands() -> list[tuple[str, click.Command]]:
    from polyswarmclient.cli import (
        ambassador,
        arbiter,
        balancemanager,
        devnet,
        keyfile,
        microengine,
        probe,
        signer,
        worker,
    )

    out: list[tuple[str, click.Command]] = [("microengine", microengine.cli)]
    tools = microengine.cli
    assert isinstance(tools, click.Group)
    for name in sorted(tools.commands):
        out.append((f"microengine {name}", tools.commands[name]))
    out.append(("worker", worker.cli))
    group = balancemanager.cli
    assert isinstance(group, click.Group)
    for name in sorted(group.commands):
        out.append((f"balancemanager {name}", group.commands[name]))
    out += [("ambassador", ambassador.cli), ("arbiter", arbiter.cli), ("polyswarmd-devnet", devnet.main)]
    out.append(("polyswarm-signer", signer.main))
    out.append(("polyswarm-probe", probe.main))
    keyfiles = keyfile.main
    assert isinstance(keyfiles, click.Group)
    for name in sorted(keyfiles.commands):
        out.append((f"polyswarm-keyfile {name}", keyfiles.commands[name]))
    return out


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and (param.is_flag and not param.default):
        return "off"
    default = param.default
    if default is None or default == () or callable(default):
        return ""
    if isinstance(param, click.Option) and param.hidden:
        return ""
    if isinstance(default, tuple | list):
        return " ".join(str(d) for d in default)
    return str(default)


def render() -> str:
    lines: list[str] = [BEGIN, ""]
    for name, command in _commands():
        lines.append(f"### `{name}`")
        lines.append("")
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        if arguments:
            lines.append("Arguments: " + " ".join(f"`{a.human_readable_name}`" for a in arguments))
            lines.append("")
        lines.append("| option | environment variable | default | meaning |")
        lines.append("| --- | --- | --- | --- |")
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden or "--help" in param.opts:
                continue
            flags = ", ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
            env = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
            env_cell = f"`{env}`" if env else ""
            default = _default(param)
            if getattr(param, "hide_input", False) or name.endswith("password"):
                default = ""
            lines.append(
                f"| {flags} | {env_cell} | {_cell(default) and f'`{_cell(default)}`'} | {_cell(param.help or '')} |"
            )
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def splice(document: str, rendering: str) -> str:
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + rendering + document[end:]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--write"] and len(args) == 2:
        path = Path(args[1])
        path.write_text(splice(path.read_text(encoding="utf-8"), render()), encoding="utf-8")
    else:
        print(render())


if __name__ == "__main__":
    main()
