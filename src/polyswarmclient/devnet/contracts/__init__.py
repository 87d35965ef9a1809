"""Vyper sources and committed build artifacts of the devnet contracts.

``compile.load_artifact(name)`` reads ``build/<name>.json`` and needs no compiler.
"""

CONTRACT_NAMES: tuple[str, ...] = ("NectarToken", "BountyRegistry", "ERC20Relay", "ArbiterStaking")
