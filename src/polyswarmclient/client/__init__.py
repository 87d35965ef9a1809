"""The client facade services code against, and what it delegates to.

``facade`` (``PolyswarmClient``, ``ClientConfig``), ``transactions`` (the build/verify/sign/post/confirm
pipeline), ``nonces`` (one nonce sequence per chain and account), ``pins`` (trust-on-first-use
contract addresses and chain ids).
"""

from polyswarmclient.client.facade import ClientConfig, PolyswarmClient

__all__ = ["ClientConfig", "PolyswarmClient"]
