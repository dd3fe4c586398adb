"""Settings that must never reach production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcours_dunning.config import Settings


def test_development_defaults():
    settings = Settings(_env_file=None)
    assert (settings.http_port, settings.time_travel, settings.tick_seconds) == (8105, False, 30)
    assert (settings.holiday_country, settings.timezone, settings.send_days) == ("FR", "Europe/Paris", [0, 1, 2, 3, 4])
    assert (settings.send_window_start.hour, settings.send_window_end.hour, settings.promise_grace_days) == (8, 18, 3)
    assert (settings.penalty_margin_points, settings.recovery_indemnity) == (10, 40)
    assert settings.database_url.endswith("/parcours_dunning")


def test_production_refuses_time_travel_and_the_dev_admin_token():
    with pytest.raises(ValidationError, match="time_travel"):
        Settings(environment="production", admin_token="a-real-secret", time_travel=True)
    with pytest.raises(ValidationError, match="admin_token"):
        Settings(environment="production")
    assert Settings(environment="production", admin_token="a-real-secret").time_travel is False


@pytest.mark.parametrize("field, value", [
    ("tick_seconds", 0), ("timezone", "Mars/Olympus"), ("holiday_country", "XX"), ("send_days", [7]), ("send_days", []),
    ("send_window_end", "07:00"), ("ecb_rates", {}), ("promise_grace_days", -1)])
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_environment_variables_use_the_dunning_prefix(monkeypatch):
    monkeypatch.setenv("PARCOURS_DUNNING_TIME_TRAVEL", "true")
    monkeypatch.setenv("PARCOURS_DUNNING_TICK_SECONDS", "5")
    monkeypatch.setenv("PARCOURS_DUNNING_HOLIDAY_COUNTRY", "DE")
    monkeypatch.setenv("PARCOURS_DUNNING_SEND_DAYS", "[0, 2]")
    monkeypatch.setenv("PARCOURS_DUNNING_ECB_RATES", '{"2026-01-01": "1.5"}')
    settings = Settings()
    assert settings.time_travel is True and settings.tick_seconds == 5
    assert (settings.holiday_country, settings.send_days) == ("DE", [0, 2])
    assert {str(k): str(v) for k, v in settings.ecb_rates.items()} == {"2026-01-01": "1.5"}
