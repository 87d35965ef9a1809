"""Read-only contract calls driven by the compiled ABI of the devnet contracts.

``ContractAbi.encode_call(name, *args)`` builds call data; ``decode_result(name, data)`` turns the
return data into one value (one output) or a dict of named outputs (several outputs, or one struct).
The embedded chain uses both; a node's chain (``web3chain``) calls through web3 contract objects and
gives the same shapes with ``shape_result``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address


def _type_of(param: dict[str, Any]) -> str:
    typ = str(param["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_type_of(c) for c in param["components"])
        return f"({inner}){typ[len('tuple') :]}"
    return typ


def _normalise(param: dict[str, Any], value: Any) -> Any:
    typ = str(param["type"])
    if typ == "address":
        return to_checksum_address(value)
    if typ.startswith("tuple") and not typ.endswith("]"):
        return {c["name"]: _normalise(c, v) for c, v in zip(param["components"], value, strict=True)}
    if typ.endswith("]"):
        inner = dict(param, type=typ[: typ.rindex("[")])
        return [_normalise(inner, v) for v in value]
    return value


@dataclass(frozen=True)
class _Fn:
    name: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]

    @functools.cached_property
    def input_types(self) -> list[str]:
        return [_type_of(p) for p in self.inputs]

    @functools.cached_property
    def output_types(self) -> list[str]:
        return [_type_of(p) for p in self.outputs]

    @functools.cached_property
    def selector(self) -> bytes:
        return bytes(keccak(text=f"{self.name}({','.join(self.input_types)})")[:4])


@dataclass(frozen=True)
class ContractAbi:
    """The functions of one compiled contract, by name (the first overload wins)."""

    name: str
    functions: dict[str, _Fn] = field(default_factory=dict)

    @classmethod
    def from_abi(cls, name: str, abi: list[dict[str, Any]]) -> ContractAbi:
        functions: dict[str, _Fn] = {}
        for item in abi:
            if item.get("type") == "function" and item["name"] not in functions:
                functions[item["name"]] = _Fn(item["name"], tuple(item["inputs"]), tuple(item["outputs"]))
        return cls(name, functions)

    def _fn(self, name: str) -> _Fn:
        try:
            return self.functions[name]
        except KeyError:
            raise AttributeError(f"{self.name} has no function {name!r}") from None

    def encode_call(self, name: str, *args: Any) -> bytes:
        fn = self._fn(name)
        return fn.selector + bytes(abi_encode(fn.input_types, list(args)))

    def decode_result(self, name: str, data: bytes) -> Any:
        return self.shape_result(name, abi_decode(self._fn(name).output_types, data))

    def shape_web3(self, name: str, value: Any) -> Any:
        """web3's decoding of a call (the output when there is one, else the list of outputs), shaped so."""
        return self.shape_result(name, [value] if len(self._fn(name).outputs) == 1 else list(value))

    def shape_result(self, name: str, values: Sequence[Any]) -> Any:
        """Decoded outputs as ``decode_result`` gives them: the one output, or a dict of named outputs."""
        fn = self._fn(name)
        if len(fn.outputs) == 1:
            only = fn.outputs[0]
            return _normalise(only, values[0])
        return {p["name"]: _normalise(p, v) for p, v in zip(fn.outputs, values, strict=True)}
