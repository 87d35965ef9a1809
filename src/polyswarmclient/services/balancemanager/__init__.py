"""The balance manager: keep enough NCT on the side chain, and not too much.

``policy`` is the pure core (:func:`decide` answers :class:`Deposit`, :class:`Withdraw` or :class:`Wait`
for a :class:`~.policy.BalanceView`); ``service`` holds the async shells (one-shot transfers, the
balance view and the block-driven :class:`BalanceManager`).
"""

from polyswarmclient.services.balancemanager.policy import Deposit, Policy, Wait, WaitKind, Withdraw, decide
from polyswarmclient.services.balancemanager.service import (
    BalanceClient,
    BalanceManager,
    Balances,
    Transfer,
    read_balances,
    transfer,
)

__all__ = [
    "BalanceClient",
    "BalanceManager",
    "Balances",
    "Deposit",
    "Policy",
    "Transfer",
    "Wait",
    "WaitKind",
    "Withdraw",
    "decide",
    "read_balances",
    "transfer",
]
