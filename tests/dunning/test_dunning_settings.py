"""Settings that must never reach production."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from parcours_dunning.config import Settings


def test_development_defaults():
    settings = Settings(_env_file=None)
    assert (settings.http_port, settings.time_travel, settings.tick_seconds, settings.reminder_hour_utc) == (8105, False, 30, 8)
    assert settings.database_url.endswith("/parcours_dunning")


def test_production_refuses_time_travel_and_the_dev_admin_token():
    with pytest.raises(ValidationError, match="time_travel"):
        Settings(environment="production", admin_token="a-real-secret", time_travel=True)
    with pytest.raises(ValidationError, match="admin_token"):
        Settings(environment="production")
    assert Settings(environment="production", admin_token="a-real-secret").time_travel is False


@pytest.mark.parametrize("field, value", [("reminder_hour_utc", 24), ("reminder_hour_utc", -1), ("tick_seconds", 0)])
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_environment_variables_use_the_dunning_prefix(monkeypatch):
    monkeypatch.setenv("PARCOURS_DUNNING_TIME_TRAVEL", "true")
    monkeypatch.setenv("PARCOURS_DUNNING_TICK_SECONDS", "5")
    settings = Settings()
    assert settings.time_travel is True and settings.tick_seconds == 5
