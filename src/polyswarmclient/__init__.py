"""polyswarm-kit: participants for a PolySwarm-style threat-intelligence marketplace.

The import name stays ``polyswarmclient`` so that engines written for the original
polyswarm-client import unchanged.
"""

__version__ = "0.1.0"
