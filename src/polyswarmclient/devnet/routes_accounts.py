"""Balances, relay and staking routes (spec §2.4, §2.6, §2.7), and the unsupported offers API (§2.9)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from eth_utils import is_address, to_checksum_address

from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.http import (
    CTX,
    ApiFailure,
    Routes,
    account_param,
    call_data,
    chain_param,
    chain_scope,
    decimal_field,
    fail,
    json_body,
    ok,
    require_object,
    transactions_reply,
)
from polyswarmclient.eth import abi

STAKING = "ArbiterStaking"

routes = Routes()


def _address(request: web.Request) -> str:
    address = request.match_info["address"]
    if not is_address(address):
        raise ApiFailure(400, "Invalid address")
    return str(to_checksum_address(address))


#: How each ``/balances/<address>/<what>`` route reads its balance.
_BALANCES: dict[str, Callable[[ChainNode, str], Awaitable[Any]]] = {
    "eth": lambda node, address: node.run(node.chain.eth_balance, address),
    "nct": lambda node, address: node.call("NectarToken", "balanceOf", address),
    "staking/total": lambda node, address: node.call(STAKING, "balanceOf", address),
    "staking/withdrawable": lambda node, address: node.call(STAKING, "withdrawableBalanceOf", address),
}
#: The chain each relay route sends NCT from (spec §2.6: forced; any ``chain`` parameter is ignored).
_RELAY_SOURCE = {"deposit": "home", "withdrawal": "side"}


@routes.get(f"/balances/{{address}}/{{what:{'|'.join(_BALANCES)}}}")
async def balance(request: web.Request) -> web.Response:
    node = request.app[CTX].node(chain_param(request))
    address = _address(request)
    try:
        value = await _BALANCES[request.match_info["what"]](node, address)
    except Exception:
        raise ApiFailure(500, "Could not retrieve balance") from None
    return ok(str(int(value)))


async def _amount(request: web.Request, *, max_length: int = 100) -> int:
    """The ``amount`` of a JSON body that must hold one (a decimal string)."""
    body = require_object(await json_body(request), ["amount"])
    return decimal_field(body, "amount", max_length=max_length)


@routes.post(f"/relay/{{direction:{'|'.join(_RELAY_SOURCE)}}}")
async def relay_transfer(request: web.Request) -> web.Response:
    account = account_param(request)
    node = request.app[CTX].node(_RELAY_SOURCE[request.match_info["direction"]])
    amount = await _amount(request, max_length=64)
    return await transactions_reply(
        request, node, account, [("NectarToken", call_data(request, abi.TRANSFER, node.addresses.erc20_relay, amount))]
    )


@routes.get("/relay/fees")
async def relay_fees(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    return ok({"fees": int(await node.call("ERC20Relay", "fees"))})


@routes.get("/staking/parameters")
async def staking_parameters(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    minimum, maximum, numerator, denominator = await node.calls(
        STAKING, ("MINIMUM_STAKE",), ("MAXIMUM_STAKE",), ("VOTE_RATIO_NUMERATOR",), ("VOTE_RATIO_DENOMINATOR",)
    )
    return ok(
        {
            "minimum_stake": int(minimum),
            "maximum_stake": int(maximum),
            "vote_ratio_numerator": int(numerator),
            "vote_ratio_denominator": int(denominator),
        }
    )


@routes.post("/staking/deposit")
async def staking_deposit(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    amount = await _amount(request)
    current = int(await node.call(STAKING, "balanceOf", account))
    maximum = int(await node.call(STAKING, "MAXIMUM_STAKE"))
    if amount + current >= maximum:  # polyswarmd's ">=" (spec §2.7), stricter than the contract
        raise ApiFailure(400, "Total stake above allowable maximum.")
    calls = [
        ("NectarToken", call_data(request, abi.APPROVE, node.addresses.arbiter_staking, amount)),
        (STAKING, call_data(request, abi.STAKE_DEPOSIT, amount)),
    ]
    return await transactions_reply(request, node, account, calls)


@routes.post("/staking/withdraw")
async def staking_withdraw(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    amount = await _amount(request)
    available = int(await node.call(STAKING, "withdrawableBalanceOf", account))
    if amount > available:
        raise ApiFailure(400, f"Exceeds withdrawal eligible {available}")
    calls = [(STAKING, call_data(request, abi.STAKE_WITHDRAW, amount))]
    return await transactions_reply(request, node, account, calls)


@routes.route("*", "/offers/{rest:.*}")
@routes.route("*", "/offers")
async def offers_unsupported(request: web.Request) -> web.Response:
    return fail("Offers are not supported by polyswarmd-devnet", 501)
