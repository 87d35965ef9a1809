"""The balance manager: keep enough NCT on the side chain, and not too much.

``policy`` is the pure core (:func:`decide`); ``service`` holds the async shells (one-shot
transfers, the balance view and the block-driven :class:`BalanceManager`).
"""

from polyswarmclient.services.balancemanager.policy import (
    RELAY_LEEWAY,
    BalanceView,
    Deposit,
    InFlightDeposit,
    Policy,
    Wait,
    WaitKind,
    Withdraw,
    decide,
)
from polyswarmclient.services.balancemanager.service import (
    BalanceClient,
    BalanceManager,
    Balances,
    Transfer,
    read_balances,
    transfer,
)

__all__ = [
    "RELAY_LEEWAY",
    "BalanceClient",
    "BalanceManager",
    "BalanceView",
    "Balances",
    "Deposit",
    "InFlightDeposit",
    "Policy",
    "Transfer",
    "Wait",
    "WaitKind",
    "Withdraw",
    "decide",
    "read_balances",
    "transfer",
]
