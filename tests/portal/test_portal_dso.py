"""The DSO trend: receivables at each month's end over the trailing 90 days' invoicing, and its
chart on the console's invoice list."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from decimal import Decimal

from parcours_contracts import PaymentRecorded
from parcours_portal.domain.dso import dso_trend, line, month_ends


def test_dso_per_month_end_from_invoices_and_payments():
    a, b = uuid.uuid4(), uuid.uuid4()
    invoices = [(a, date(2026, 5, 1), Decimal("1000")), (b, date(2026, 6, 1), Decimal("500")),
                (uuid.uuid4(), None, Decimal("9999"))]  # not received yet: no issue date
    payments = [(a, date(2026, 6, 10), Decimal("1000")), (uuid.uuid4(), date(2026, 6, 1), Decimal("700"))]
    assert month_ends(date(2026, 6, 15), 3) == [date(2026, 4, 30), date(2026, 5, 31), date(2026, 6, 15)]
    april, may, june = dso_trend(invoices, payments, today=date(2026, 6, 15), months=3)
    assert (april.dso, april.receivables) == (None, 0)
    assert (may.dso, may.receivables) == (90, 1000)  # all of May's invoicing still owed
    assert (june.dso, june.receivables) == (30, 500)  # 500 owed of 1 500 invoiced in 90 days

    dots = line([april, may, june], width=100, height=100, margin=10)
    assert [(d.x, d.y, d.value) for d in dots] == [(10, 100, None), (50, 10, 90), (90, 70, 30)]


async def test_the_invoice_list_draws_the_trend(portal, signed_in, journey, publish, page_shows):
    flow = journey(number="F-DSO")
    flow.summary = flow.summary.model_copy(update={"issue_date": date.today() - timedelta(days=10)})
    paid = PaymentRecorded(**flow._env(60), payment_id="P-DSO", amount=Decimal("300.00"), currency="EUR",
                           paid_on=date.today(), open_amount=Decimal("900.00"), fully_paid=False, source="api")
    await publish(*flow.delivered(), paid)
    manager = await signed_in("cm@acme.example")
    page = await page_shows(manager, "/console", "F-DSO", "900.00")
    desc = re.search(r'<desc id="dso-desc">(.*?)</desc>', page.text).group(1)
    assert desc.endswith(f"{date.today():%m/%y}: 68; ")  # 900 still owed of 1 200 invoiced within 90 days
