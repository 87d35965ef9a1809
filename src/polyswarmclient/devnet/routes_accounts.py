"""Balances, relay and staking routes (spec §2.4, §2.6, §2.7), and the unsupported offers API (§2.9)."""

from __future__ import annotations

from aiohttp import web
from eth_utils import is_address, to_checksum_address

from polyswarmclient.devnet.server import (
    CTX,
    ApiFailure,
    account_param,
    add_route,
    build_transactions,
    chain_param,
    chain_scope,
    decimal_field,
    fail,
    json_body,
    ok,
    require_object,
)
from polyswarmclient.eth import abi

STAKING = "ArbiterStaking"


def _address(request: web.Request) -> str:
    address = request.match_info["address"]
    if not is_address(address):
        raise ApiFailure(400, "Invalid address")
    return str(to_checksum_address(address))


async def _balance(request: web.Request, what: str) -> web.Response:
    node = request.app[CTX].node(chain_param(request))
    address = _address(request)
    try:
        if what == "eth":
            value = await node.run(node.chain.eth_balance, address)
        elif what == "nct":
            value = await node.call("NectarToken", "balanceOf", address)
        elif what == "staking_total":
            value = await node.call(STAKING, "balanceOf", address)
        else:
            value = await node.call(STAKING, "withdrawableBalanceOf", address)
    except Exception:
        raise ApiFailure(500, "Could not retrieve balance") from None
    return ok(str(int(value)))


async def balance_eth(request: web.Request) -> web.Response:
    return await _balance(request, "eth")


async def balance_nct(request: web.Request) -> web.Response:
    return await _balance(request, "nct")


async def balance_staking_total(request: web.Request) -> web.Response:
    return await _balance(request, "staking_total")


async def balance_staking_withdrawable(request: web.Request) -> web.Response:
    return await _balance(request, "staking_withdrawable")


async def _relay_transfer(request: web.Request, chain: str) -> web.Response:
    # The chain is forced (spec §2.6); any ``chain`` parameter is ignored.
    account = account_param(request)
    node = request.app[CTX].node(chain)
    body = require_object(await json_body(request), ["amount"])
    amount = decimal_field(body, "amount", max_length=64)
    calls = [("NectarToken", abi.TRANSFER.encode(node.addresses.erc20_relay, amount))]
    return ok({"transactions": await build_transactions(request, node, account, calls)})


async def relay_deposit(request: web.Request) -> web.Response:
    return await _relay_transfer(request, "home")


async def relay_withdrawal(request: web.Request) -> web.Response:
    return await _relay_transfer(request, "side")


async def relay_fees(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    return ok({"fees": int(await node.call("ERC20Relay", "fees"))})


async def staking_parameters(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    return ok(
        {
            "minimum_stake": int(await node.call(STAKING, "MINIMUM_STAKE")),
            "maximum_stake": int(await node.call(STAKING, "MAXIMUM_STAKE")),
            "vote_ratio_numerator": int(await node.call(STAKING, "VOTE_RATIO_NUMERATOR")),
            "vote_ratio_denominator": int(await node.call(STAKING, "VOTE_RATIO_DENOMINATOR")),
        }
    )


async def staking_deposit(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    body = require_object(await json_body(request), ["amount"])
    amount = decimal_field(body, "amount")
    current = int(await node.call(STAKING, "balanceOf", account))
    maximum = int(await node.call(STAKING, "MAXIMUM_STAKE"))
    if amount + current >= maximum:  # polyswarmd's ">=" (spec §2.7), stricter than the contract
        raise ApiFailure(400, "Total stake above allowable maximum.")
    calls = [
        ("NectarToken", abi.APPROVE.encode(node.addresses.arbiter_staking, amount)),
        (STAKING, abi.STAKE_DEPOSIT.encode(amount)),
    ]
    return ok({"transactions": await build_transactions(request, node, account, calls)})


async def staking_withdraw(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    body = require_object(await json_body(request), ["amount"])
    amount = decimal_field(body, "amount")
    available = int(await node.call(STAKING, "withdrawableBalanceOf", account))
    if amount > available:
        raise ApiFailure(400, f"Exceeds withdrawal eligible {available}")
    calls = [(STAKING, abi.STAKE_WITHDRAW.encode(amount))]
    return ok({"transactions": await build_transactions(request, node, account, calls)})


async def offers_unsupported(request: web.Request) -> web.Response:
    return fail("Offers are not supported by polyswarmd-devnet", 501)


def register(app: web.Application) -> None:
    add_route(app, "GET", "/balances/{address}/eth", balance_eth)
    add_route(app, "GET", "/balances/{address}/nct", balance_nct)
    add_route(app, "GET", "/balances/{address}/staking/total", balance_staking_total)
    add_route(app, "GET", "/balances/{address}/staking/withdrawable", balance_staking_withdrawable)
    add_route(app, "POST", "/relay/deposit", relay_deposit)
    add_route(app, "POST", "/relay/withdrawal", relay_withdrawal)
    add_route(app, "GET", "/relay/fees", relay_fees)
    add_route(app, "GET", "/staking/parameters", staking_parameters)
    add_route(app, "POST", "/staking/deposit", staking_deposit)
    add_route(app, "POST", "/staking/withdraw", staking_withdraw)
    add_route(app, "*", "/offers", offers_unsupported)
    add_route(app, "*", "/offers/{rest:.*}", offers_unsupported)
