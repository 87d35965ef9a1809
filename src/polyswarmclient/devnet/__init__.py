"""Local polyswarmd-compatible devnet: our own contracts on an embedded EVM."""
