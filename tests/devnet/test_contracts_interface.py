"""The compiled ABIs against the BountyRegistry 1.6 interface that polyswarmd 2.2.0 binds.

``polyswarmclient/devnet/contracts/interface-1.6.json`` lists, contract by contract, every function (signature,
outputs, mutability) and event (signature, which arguments are indexed) of the 1.6 generation. Each one
must be in our ABI with the same selector or topic and the same shape; argument names do not matter.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak

from polyswarmclient.devnet.contracts.compile import load_artifact, load_interface
from polyswarmclient.devnet.deploy import contract_call, function_signature

INTERFACE = load_interface()
OURS = ("BountyRegistry", "ArbiterStaking", "ERC20Relay", "NectarToken")


def _type(param: dict[str, Any]) -> str:
    typ = str(param["type"])
    if typ.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + typ[len("tuple") :]
    return typ


def _functions(contract: str) -> dict[bytes, dict[str, Any]]:
    abi = load_artifact(contract)["abi"]
    return {
        keccak(text=function_signature(item))[:4]: {
            "signature": function_signature(item),
            "outputs": [_type(o) for o in item["outputs"]],
            "mutability": item["stateMutability"],
        }
        for item in abi
        if item["type"] == "function"
    }


def _events(contract: str) -> dict[bytes, dict[str, Any]]:
    abi = load_artifact(contract)["abi"]
    return {
        keccak(text=function_signature(item)): {
            "signature": function_signature(item),
            "indexed": [bool(p["indexed"]) for p in item["inputs"]],
        }
        for item in abi
        if item["type"] == "event"
    }


def _cases(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(c, entry) for c in OURS for entry in INTERFACE["contracts"][c][kind]]


@pytest.mark.parametrize(
    ("contract", "expected"), _cases("functions"), ids=lambda v: v["signature"] if isinstance(v, dict) else v
)
def test_every_1_6_function_is_present_with_its_shape(contract: str, expected: dict[str, Any]) -> None:
    """A 1.6 function is in our ABI under the same selector, with the same outputs and mutability."""
    ours = _functions(contract).get(keccak(text=expected["signature"])[:4])
    assert ours is not None, f"{contract} lacks {expected['signature']}"
    assert ours == expected


@pytest.mark.parametrize(
    ("contract", "expected"), _cases("events"), ids=lambda v: v["signature"] if isinstance(v, dict) else v
)
def test_every_1_6_event_is_present_with_its_shape(contract: str, expected: dict[str, Any]) -> None:
    """A 1.6 event is in our ABI under the same topic, with the same arguments indexed."""
    ours = _events(contract).get(keccak(text=expected["signature"]))
    assert ours is not None, f"{contract} lacks event {expected['signature']}"
    assert ours == expected


def test_our_extra_functions_are_the_documented_few() -> None:
    """Beyond 1.6 our contracts publish only the helpers their docstrings justify."""
    extra = {
        contract: sorted(
            ours["signature"]
            for selector, ours in _functions(contract).items()
            if selector not in {keccak(text=f["signature"])[:4] for f in INTERFACE["contracts"][contract]["functions"]}
        )
        for contract in OURS
    }
    assert extra == {
        "BountyRegistry": ["calculateCommitment(uint256,uint256,address)"],
        "ArbiterStaking": [],
        "ERC20Relay": [],
        "NectarToken": [],
    }


@pytest.mark.parametrize(
    ("contract", "low", "high"),
    [
        ("BountyRegistry", (1, 6, 0), (1, 7, 0)),
        ("ArbiterStaking", (1, 2, 0), (1, 3, 0)),
        ("ERC20Relay", (1, 2, 0), (1, 4, 0)),
    ],
)
def test_version_is_in_the_range_polyswarmd_accepts(env, contract: str, low: tuple, high: tuple) -> None:
    """VERSION() answers a major.minor.patch string inside the range polyswarmd 2.2.0 checks on first use."""
    version = contract_call(env.chain, env.addr(contract), contract, "VERSION")
    parts = tuple(int(p) for p in version.split("."))
    assert len(parts) == 3 and low <= parts < high, version
