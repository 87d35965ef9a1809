"""One error tree for the whole package.

Every error a user can meet derives from :class:`PolyswarmError`. Each class carries the process exit
code the CLIs use, so the mapping lives here and nowhere else. Messages say what is wrong and how to
fix it; they never contain secrets.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2


class PolyswarmError(Exception):
    """Root of every error raised by polyswarm-kit."""

    exit_code = EXIT_RUNTIME


# --- configuration and usage (exit 2) -------------------------------------------------------------


class ConfigError(PolyswarmError):
    """The user's configuration is wrong or incomplete; nothing was attempted."""

    exit_code = EXIT_USAGE


class KeyfileError(ConfigError):
    """The keyfile is missing, unreadable, corrupt, or the password does not open it."""


class BackendNotFound(ConfigError):
    """No scan backend answers to the requested slug."""


class SignerConfigError(ConfigError):
    """The signer named by --signer cannot be used: unreachable at start, a refused token, a socket others
    can open, an account it does not hold."""


# --- talking to polyswarmd (exit 1) ---------------------------------------------------------------


class TransportError(PolyswarmError):
    """polyswarmd could not be reached or answered something unusable."""


class ConnectionFailed(TransportError):
    """The TCP/TLS connection to polyswarmd failed."""


class ConnectionLost(ConnectionFailed):
    """The connection broke after the request was sent: polyswarmd may or may not have acted on it.

    Raised for non-idempotent requests only (idempotent ones are retried). ``POST /transactions``
    callers recover by posting the same signed bytes again (``known transaction`` means it arrived).
    """


class Unauthorized(TransportError):
    """polyswarmd refused the API key (HTTP 401). Fatal: retrying cannot help."""


class RateLimited(TransportError):
    """A gateway answered HTTP 429."""


class MalformedResponse(TransportError):
    """polyswarmd answered with a body that does not follow the protocol."""


class ReplyTooLarge(MalformedResponse):
    """polyswarmd's answer (decompressed) is larger than the cap for its kind; nothing more was read."""


class ApiError(TransportError):
    """polyswarmd answered ``{"status": "FAIL"}``.

    ``errors`` keeps the raw payload (a string, a list of ``{is_error, message}`` or a dict).
    """

    def __init__(self, status: int, message: str, errors: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class NotFound(ApiError):
    """polyswarmd answered 404."""


# --- transactions (exit 1) ------------------------------------------------------------------------


class TransactionError(PolyswarmError):
    """A transaction could not be built, verified, posted or confirmed."""


class InvalidRequest(TransactionError, ValueError):
    """The requested action is invalid on its face (a bid out of range, a mask/bid count mismatch, a
    withdrawal below the relay fee...). Detected locally; nothing was sent."""


class VerificationError(TransactionError):
    """A transaction built by polyswarmd does not match what was asked for. Nothing was signed."""


class PinMismatch(VerificationError):
    """A contract address or chain id differs from the one pinned earlier for this polyswarmd."""


class TransactionFailed(TransactionError):
    """The transaction was mined but reverted (``transaction failed``). Never retried."""


class ReceiptTimeout(TransactionError):
    """polyswarmd timed out waiting for a receipt; the nonce may be too high."""


class SignerRefused(TransactionError):
    """The signer's policy refused to sign; its reason is in the message. Nothing was signed."""


class SignerUnavailable(TransactionError):
    """The signer did not answer (stopped, restarting, unreachable) within the time the client waits."""


class NonceError(TransactionError):
    """polyswarmd or the node reported a nonce problem (``nonce too low`` and friends)."""


class InsufficientFunds(PolyswarmError):
    """The wallet does not hold enough NCT or ETH for the requested action."""


# --- engine side ----------------------------------------------------------------------------------


class ScanError(PolyswarmError):
    """A scan backend failed on an artifact."""


class StateError(PolyswarmError):
    """The state directory cannot be read or written."""
