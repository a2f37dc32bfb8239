"""Error classes every layer raises, so the CLI can print one clear message instead of a traceback.

Each error carries what went wrong (`problem`) and what the user can do about it (`fix`). The CLI
prints both and exits with status 2; nothing above the edge needs to know which layer failed.
"""

from __future__ import annotations


class AIOTradeError(Exception):
    """Base of every error meant for the user. `str()` gives the full message."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return self.problem if not self.fix else f"{self.problem}\n  fix: {self.fix}"


class ConfigError(AIOTradeError):
    """A config file, CLI argument or secret is missing or invalid."""


class DataError(AIOTradeError):
    """Candles are missing, malformed, inconsistent or too few."""


class ModelError(AIOTradeError):
    """A model or policy bundle is missing, incompatible or corrupt."""


class ExchangeError(AIOTradeError):
    """An exchange (or the emulator) refused or failed a request."""


class RetryableExchangeError(ExchangeError):
    """Transient: network, timeout, 5xx, rate limit. Safe to retry after `retry_after_s`."""

    def __init__(self, problem: str, fix: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(problem, fix)
        self.retry_after_s = retry_after_s


class FatalExchangeError(ExchangeError):
    """Permanent: auth, permission, invalid order, insufficient funds. Retrying will not help."""


class InvalidOrderError(FatalExchangeError):
    """The order breaks an exchange rule (tick, lot, min notional) or is otherwise rejected."""


class InsufficientFundsError(FatalExchangeError):
    """The account does not hold enough free balance for the order."""


class AuthenticationError(FatalExchangeError):
    """The API key, secret or passphrase was rejected."""


class OrderNotFoundError(FatalExchangeError):
    """The exchange does not know the order."""
