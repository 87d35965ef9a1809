"""Everything Ethereum: ABI, commitment, bloom, keys and signing. The only place eth-account is used."""
