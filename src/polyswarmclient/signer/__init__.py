"""``polyswarm-signer``: holds the key, decodes every transaction, signs within its policy, audits it all."""
