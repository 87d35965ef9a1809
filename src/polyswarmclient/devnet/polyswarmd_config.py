"""polyswarmd's chain configuration for a devnet: ``polyswarmd-devnet --export-polyswarmd-config DIR``.

polyswarmd 2.2.0 reads, from the directory its ``eth.directory`` setting names,

* ``homechain.json`` and ``sidechain.json``: ``eth_uri`` (the chain's JSON-RPC URL), ``chain_id``,
  ``free`` (gas price 0, and the block gas limit as gas) and one ``<snake_case_name>_address`` per
  contract;
* one ``<ContractName>.json`` per contract it binds, ``{"abi": [...]}``: NectarToken, BountyRegistry,
  ArbiterStaking and ERC20Relay, and OfferRegistry and OfferMultiSig, which it binds even where offers
  are unused.

The devnet has no offer contracts: ``offer_registry_address`` is the zero address (polyswarmd skips its
version check there) and the two offer ABIs are built from the 1.6 interface list
(``contracts/interface-1.6.json``), so that polyswarmd loads them.

polyswarmd talks to its chains over JSON-RPC only: ``eth_uri`` is the node given with ``--home-rpc`` /
``--side-rpc``. An embedded chain has no such URL; its file gets ``"eth_uri": null`` and the export says
so (see :func:`unreachable_chains`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyswarmclient.devnet.contracts import CONTRACT_NAMES
from polyswarmclient.devnet.contracts.compile import load_artifact, load_interface

OFFER_CONTRACTS = ("OfferRegistry", "OfferMultiSig")
ZERO_ADDRESS = "0x" + "0" * 40
_SIGNATURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$")


@dataclass(frozen=True)
class ChainConfig:
    """What polyswarmd needs to know about one chain of the devnet."""

    name: str  # "home" or "side"
    eth_uri: str | None
    chain_id: int
    free: bool
    #: snake_case contract name (``nectar_token``, ``bounty_registry``, ...) -> address
    addresses: Mapping[str, str]


def snake_case(name: str) -> str:
    """``BountyRegistry`` -> ``bounty_registry``, ``ERC20Relay`` -> ``erc20_relay``: polyswarmd's address keys."""
    return re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", name).lower()


def _types(signature: str) -> tuple[str, list[str]]:
    match = _SIGNATURE.match(signature)
    if match is None:
        raise ValueError(f"not a signature: {signature!r}")
    inner = match.group(2)
    return match.group(1), inner.split(",") if inner else []


def abi_from_interface(entries: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An ABI (``arg0``, ``arg1``, ... as argument names) for one contract of the interface list."""
    abi: list[dict[str, Any]] = []
    for fn in entries["functions"]:
        name, types = _types(fn["signature"])
        mutability = fn["mutability"]
        abi.append(
            {
                "type": "function",
                "name": name,
                "inputs": [{"name": f"arg{i}", "type": t} for i, t in enumerate(types)],
                "outputs": [{"name": "", "type": t} for t in fn["outputs"]],
                "stateMutability": mutability,
                "constant": mutability in ("view", "pure"),
                "payable": mutability == "payable",
            }
        )
    for event in entries["events"]:
        name, types = _types(event["signature"])
        abi.append(
            {
                "type": "event",
                "name": name,
                "anonymous": False,
                "inputs": [
                    {"name": f"arg{i}", "type": t, "indexed": bool(indexed)}
                    for i, (t, indexed) in enumerate(zip(types, event["indexed"], strict=True))
                ],
            }
        )
    return abi


def chain_file(chain: ChainConfig) -> dict[str, Any]:
    """The content of ``homechain.json`` / ``sidechain.json``."""
    out: dict[str, Any] = {f"{key}_address": address for key, address in chain.addresses.items()}
    out["offer_registry_address"] = ZERO_ADDRESS
    out.update({"eth_uri": chain.eth_uri, "chain_id": chain.chain_id, "free": chain.free})
    return out


def config_files(home: ChainConfig, side: ChainConfig) -> dict[str, dict[str, Any]]:
    """Every file of the directory, by name."""
    files: dict[str, dict[str, Any]] = {"homechain.json": chain_file(home), "sidechain.json": chain_file(side)}
    for name in CONTRACT_NAMES:
        files[f"{name}.json"] = {"abi": load_artifact(name)["abi"]}
    interface = load_interface()["contracts"]
    for name in OFFER_CONTRACTS:
        files[f"{name}.json"] = {"abi": abi_from_interface(interface[name])}
    return files


def write_config(directory: Path, home: ChainConfig, side: ChainConfig) -> list[Path]:
    """Write the files into ``directory`` (made when missing; files of the same name are replaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, content in config_files(home, side).items():
        path = directory / filename
        path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def unreachable_chains(home: ChainConfig, side: ChainConfig) -> list[str]:
    """The chains polyswarmd could not reach: embedded ones, which have no JSON-RPC URL."""
    return [chain.name for chain in (home, side) if not chain.eth_uri]
