from __future__ import annotations

import pytest

from services.kit.config import KitSettings, load_settings


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SERVICE_NAME", "catalog")
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("REQUEST_TIMEOUT", "2.5")
    settings = load_settings(KitSettings)
    assert (settings.service_name, settings.port, settings.request_timeout) == (
        "catalog",
        9001,
        2.5,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("WEB_CONCURRENCY", "0"),
        ("DATABASE_URL", "mysql://x"),
        ("LOG_LEVEL", "LOUD"),
        ("ACCESS_LOG_SAMPLE", "2"),
    ],
)
def test_a_wrong_value_stops_with_the_variable_named(monkeypatch, capsys, variable, value):
    monkeypatch.setenv("SERVICE_NAME", "catalog")
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(KitSettings)
    assert stopped.value.code == 2
    assert f"configuration error: {variable}:" in capsys.readouterr().err


def test_missing_service_name_is_named(monkeypatch, capsys):
    monkeypatch.delenv("SERVICE_NAME", raising=False)
    with pytest.raises(SystemExit):
        load_settings(KitSettings)
    assert "SERVICE_NAME" in capsys.readouterr().err


def test_pool_bounds_are_checked(monkeypatch, capsys):
    monkeypatch.setenv("SERVICE_NAME", "catalog")
    monkeypatch.setenv("DB_POOL_MIN", "8")
    monkeypatch.setenv("DB_POOL_MAX", "4")
    with pytest.raises(SystemExit):
        load_settings(KitSettings)
    assert "DB_POOL_MIN must not exceed DB_POOL_MAX" in capsys.readouterr().err
