"""API credentials: from the environment or a 0600 TOML file, never from the config, never logged.

Environment: AIOTRADE_<EXCHANGE>_KEY, AIOTRADE_<EXCHANGE>_SECRET and, for Bitget,
AIOTRADE_BITGET_PASSPHRASE. File: a TOML file readable by its owner only, with one table per
exchange: `[binance] key = "..." secret = "..."`.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError

# Which credential parts each venue needs.
_REQUIRED = {"binance": ("key", "secret"), "bitget": ("key", "secret", "passphrase")}


def mask(secret: str | None) -> str:
    if not secret:
        return "(not set)"
    return "****" + secret[-2:] if len(secret) > 8 else "****"


@dataclass(frozen=True)
class Credentials:
    exchange: str
    key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        return f"Credentials(exchange={self.exchange!r}, key={mask(self.key)})"

    __str__ = __repr__

    def masked(self) -> dict[str, str]:
        return {"key": mask(self.key), "secret": mask(self.secret), "passphrase": mask(self.passphrase)}


def load_credentials(exchange: str, secrets_file: str | None = None, required: bool = True) -> Credentials | None:
    """Environment first, then the secrets file. Returns None when absent and not `required`."""
    parts = _from_env(exchange)
    if not all(parts.get(k) for k in _REQUIRED[exchange]) and secrets_file:
        parts = {**_from_file(Path(secrets_file), exchange), **{k: v for k, v in parts.items() if v}}
    missing = [k for k in _REQUIRED[exchange] if not parts.get(k)]
    if missing:
        if not required:
            return None
        env_names = ", ".join(f"AIOTRADE_{exchange.upper()}_{k.upper()}" for k in missing)
        raise ConfigError(
            f"{exchange} API credentials missing: {', '.join(missing)}",
            f"export {env_names}, or put them in a 0600 secrets file named by exchange.secrets_file",
        )
    return Credentials(exchange, parts["key"], parts["secret"], parts.get("passphrase"))


def _from_env(exchange: str) -> dict[str, str]:
    prefix = f"AIOTRADE_{exchange.upper()}_"
    return {k: os.environ.get(prefix + k.upper(), "") for k in ("key", "secret", "passphrase")}


def _from_file(path: Path, exchange: str) -> dict[str, str]:
    if not path.is_file():
        raise ConfigError(f"secrets file {path} not found", "create it, or use the AIOTRADE_* environment variables")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"secrets file {path} is readable by others (mode {mode:o})", f"run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"secrets file {path}: not valid TOML ({e})", "fix its syntax") from None
    table = data.get(exchange, {})
    if not isinstance(table, dict):
        raise ConfigError(f"secrets file {path}: [{exchange}] must be a table", f'write [{exchange}] key = "..." secret = "..."')
    return {k: str(v) for k, v in table.items() if k in ("key", "secret", "passphrase")}
