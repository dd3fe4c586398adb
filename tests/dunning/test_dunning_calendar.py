"""Business days with French public holidays, sending windows, late-payment penalties: pure."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal

import pytest

from parcours_dunning.domain.calendar import BusinessCalendar
from parcours_dunning.domain.penalties import late_payment_penalties, rate_in_force

UTC = timezone.utc
FR = BusinessCalendar()


def test_business_days_skip_weekends_and_french_holidays():
    assert not FR.is_business_day(date(2026, 12, 25)) and not FR.is_business_day(date(2027, 1, 1))
    assert FR.is_business_day(date(2026, 12, 24))
    # Thu 24 Dec + 1 → Mon 28 (Fri 25 is Christmas); Thu 31 Dec + 1 → Mon 4 Jan (Fri 1 Jan)
    assert FR.shift(date(2026, 12, 24), 1, business=True) == date(2026, 12, 28)
    assert FR.shift(date(2026, 12, 31), 1, business=True) == date(2027, 1, 4)
    assert FR.shift(date(2027, 1, 4), -1, business=True) == date(2026, 12, 31)
    assert FR.shift(date(2026, 12, 24), 1, business=False) == date(2026, 12, 25)
    assert FR.shift(date(2026, 12, 25), 0, business=True) == date(2026, 12, 28), "a holiday start counts from the next day"
    assert BusinessCalendar(country="DE").is_business_day(date(2026, 11, 11)), "Armistice is French"


@pytest.mark.parametrize("instant, slot", [
    (datetime(2026, 12, 22, 9, tzinfo=UTC), datetime(2026, 12, 22, 9, tzinfo=UTC)),       # Tue 10:00 Paris: now
    (datetime(2026, 12, 22, 3, tzinfo=UTC), datetime(2026, 12, 22, 7, tzinfo=UTC)),       # night → 08:00 Paris
    (datetime(2026, 12, 22, 17, tzinfo=UTC), datetime(2026, 12, 23, 7, tzinfo=UTC)),      # 18:00 Paris → next morning
    (datetime(2026, 12, 24, 18, tzinfo=UTC), datetime(2026, 12, 28, 7, tzinfo=UTC)),      # Thu evening, Christmas, weekend
    (datetime(2026, 12, 31, 12, tzinfo=UTC), datetime(2026, 12, 31, 12, tzinfo=UTC)),
    (datetime(2027, 1, 1, 12, tzinfo=UTC), datetime(2027, 1, 4, 7, tzinfo=UTC)),          # New Year's Day → Monday
    (datetime(2026, 7, 1, 5, tzinfo=UTC), datetime(2026, 7, 1, 6, tzinfo=UTC)),           # summer time: 08:00 = 06:00 UTC
])
def test_sending_window_moves_instants_to_the_next_allowed_slot(instant, slot):
    assert FR.next_slot(instant) == slot


def test_sending_window_is_configurable():
    evening = BusinessCalendar(tz="America/New_York", window_start=time(17), window_end=time(20), window_days=[5])
    assert evening.next_slot(datetime(2026, 12, 22, 12, tzinfo=UTC)) == datetime(2026, 12, 26, 22, tzinfo=UTC)
    with pytest.raises(ValueError):
        BusinessCalendar(window_start=time(18), window_end=time(8))


RATES = {date(2024, 12, 18): Decimal("3.15"), date(2025, 6, 11): Decimal("2.15")}


def test_rate_in_force_is_the_latest_entry_on_or_before_the_date():
    assert rate_in_force(RATES, date(2025, 1, 1)) == Decimal("3.15")
    assert rate_in_force(RATES, date(2025, 7, 1)) == Decimal("2.15")
    assert rate_in_force(RATES, date(2020, 1, 1)) == Decimal("3.15"), "before the table: its earliest rate"


def test_late_payment_penalties_arithmetic():
    # due 31 Dec 2026 (second half-year: the rate of 1 July 2026 = 2.15 + 10), 30 days late on 1200 €
    p = late_payment_penalties(open_amount=Decimal("1200.00"), currency="EUR", due_date=date(2026, 12, 31),
                               on=date(2027, 1, 30), ecb_rates=RATES)
    assert (p.indemnity, p.rate, p.days_late) == (Decimal("40.00"), Decimal("12.15"), 30)
    assert p.interest == Decimal("11.98")          # 1200 × 12.15 % × 30 / 365 = 11.983…
    # first half-year 2025: the rate in force on 1 January (3.15), 10 days on 1000 €
    early = late_payment_penalties(open_amount=Decimal("1000"), currency="EUR", due_date=date(2025, 6, 20),
                                   on=date(2025, 6, 30), ecb_rates=RATES)
    assert (early.rate, early.interest) == (Decimal("13.15"), Decimal("3.60"))   # 3.6027…
    assert late_payment_penalties(open_amount=Decimal("1000"), currency="EUR", due_date=date(2025, 6, 20),
                                  on=date(2025, 6, 20), ecb_rates=RATES).interest == Decimal("0.00")
    custom = late_payment_penalties(open_amount=Decimal("365"), currency="EUR", due_date=date(2026, 3, 1),
                                    on=date(2026, 3, 2), ecb_rates={date(2026, 1, 1): Decimal("0")},
                                    margin_points=Decimal("3"), indemnity=Decimal("0"))
    assert (custom.interest, custom.indemnity) == (Decimal("0.03"), Decimal("0.00"))
