from __future__ import annotations

import os
import stat

import pytest

from core.config import Config, load_config
from core.errors import ConfigError
from core.secrets import load_credentials
from pipeline.cli.config_cmds import starter_text


def _write(tmp_path, text):
    p = tmp_path / "aiotrade.toml"
    p.write_text(text)
    return p


def test_starter_file_is_the_defaults(tmp_path):
    cfg = load_config(_write(tmp_path, starter_text()))
    assert cfg == Config()


def test_out_of_range_names_file_key_value_and_bounds(tmp_path):
    p = _write(tmp_path, "[risk]\nmax_drawdown_pct = 150\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}: risk.max_drawdown_pct = 150: must be > 0 and <= 100" in e.value.problem


def test_unknown_key_suggests_the_close_one(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "[strategy.grid]\nlevles = 10\n"))
    assert "strategy.grid.levles: unknown key (did you mean 'levels'?)" in e.value.problem


def test_malformed_toml_says_where(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, "[risk\nx = 1\n"))
    assert "not valid TOML" in e.value.problem and "line 1" in e.value.problem


def test_unknown_exchange_lists_allowed(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, '[exchange]\nname = "kraken"\n'))
    assert 'exchange.name = "kraken"' in e.value.problem and "binance" in e.value.problem


def test_feature_timeframe_must_be_multiple_of_base(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, '[market]\nbase_timeframe = "1h"\nfeature_timeframes = ["15m"]\n'))
    assert "whole multiple" in e.value.problem


def test_fixed_grid_range_must_be_ordered(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, '[strategy.grid]\nrange_mode = "fixed"\nlower_price = 30.0\nupper_price = 20.0\n'))
    assert "lower_price 30.0 must be below upper_price 20.0" in e.value.problem


def test_config_hash_changes_with_settings():
    assert Config().config_hash() != Config.model_validate({"risk": {"capital_quote": 5}}).config_hash()
    assert Config().config_hash() == Config().config_hash()


def test_secrets_from_env_are_masked(monkeypatch):
    monkeypatch.setenv("AIOTRADE_BINANCE_KEY", "key-1234567890")
    monkeypatch.setenv("AIOTRADE_BINANCE_SECRET", "secret-abcdefghij")
    c = load_credentials("binance")
    assert c is not None and c.secret == "secret-abcdefghij"
    assert "secret-abcdefghij" not in repr(c) and "key-1234567890" not in str(c)
    assert c.masked()["secret"] == "****ij"


def test_secrets_file_must_be_private(tmp_path, monkeypatch):
    for k in ("KEY", "SECRET", "PASSPHRASE"):
        monkeypatch.delenv(f"AIOTRADE_BITGET_{k}", raising=False)
    f = tmp_path / "secrets.toml"
    f.write_text('[bitget]\nkey = "k"\nsecret = "s"\npassphrase = "p"\n')
    os.chmod(f, 0o644)
    with pytest.raises(ConfigError) as e:
        load_credentials("bitget", str(f))
    assert "chmod 600" in (e.value.fix or "")
    os.chmod(f, stat.S_IRUSR | stat.S_IWUSR)
    c = load_credentials("bitget", str(f))
    assert c is not None and c.passphrase == "p"


def test_missing_keys_name_the_variables(monkeypatch):
    for k in ("KEY", "SECRET"):
        monkeypatch.delenv(f"AIOTRADE_BINANCE_{k}", raising=False)
    with pytest.raises(ConfigError) as e:
        load_credentials("binance")
    assert "AIOTRADE_BINANCE_KEY" in (e.value.fix or "")
    assert load_credentials("binance", required=False) is None
