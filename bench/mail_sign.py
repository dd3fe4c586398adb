"""Emails rendered, DKIM-signed and accepted by the local SMTP sink per second (goal ≥ 300/s):
channels' own render → compose → sign path for a branded tenant with a sender domain, handed
to the SMTP sink (its own process) over a few kept-open connections. Also the cost of each step
alone, to show where the time goes.

    python -m bench.mail_sign                    # 2000 messages, 8 connections
    python -m bench.mail_sign --messages 500 --connections 4"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

if __package__ in (None, ""):  # `python bench/mail_sign.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib  # noqa: E402

from parcours_channels.adapters.mail.compose import invoice_message, to_wire  # noqa: E402
from parcours_channels.adapters.mail.profile import Sender, TenantMail  # noqa: E402
from parcours_channels.adapters.mail.render import Brand  # noqa: E402
from parcours_channels.config import Settings  # noqa: E402
from parcours_channels.domain.dkim import generate_key  # noqa: E402
from parcours_contracts import DispatchRequested, InvoiceSummary, Recipient  # noqa: E402
from parcours_devstack.ports import free_port  # noqa: E402

GOAL = 300.0


def _request(i: int) -> DispatchRequested:
    invoice = InvoiceSummary(number=f"F-2026-{i:06d}", issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2),
                             currency="EUR", total_excl_tax=Decimal("1000.00"), total_tax=Decimal("200.00"),
                             total_incl_tax=Decimal("1200.00"), seller_name="Ateliers Exemple SAS",
                             buyer_name="Client Exemple SARL", customer_ref="C-1")
    return DispatchRequested(tenant_id="bench", invoice_id=uuid.uuid4(), correlation_id=f"bench-{i}",
                             channel="email_link", recipients=[Recipient(email=f"c{i}@buyer.example", name="Compta")],
                             invoice=invoice)


def _tenant(sign: bool) -> TenantMail:
    key = generate_key("acme.example", "bench")
    return TenantMail(sender=Sender(address="factures@acme.example", name="ACME", dkim=key) if sign else None,
                      brand=Brand(name="ACME", primary_color="#0b7285", signature="Service facturation\nACME"))


def _per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def step_rates(messages: int, settings: Settings) -> dict[str, float]:
    """Messages per second of render+compose alone, and with DKIM signing (one core)."""
    rates = {}
    for label, tenant in (("render_compose_per_s", _tenant(False)), ("render_compose_sign_per_s", _tenant(True))):
        requests = [_request(i) for i in range(messages)]
        started = time.perf_counter()
        for request in requests:
            to_wire(invoice_message(request, request.recipients[0], message_id=f"<{request.dispatch_id}@acme.example>",
                                    settings=settings, tenant=tenant))
        rates[label] = _per_second(messages, time.perf_counter() - started)
    return rates


async def end_to_end(messages: int, connections: int, settings: Settings, smtp_port: int) -> float:
    """Rendered, signed and accepted by the sink, per second."""
    tenant = _tenant(True)
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(_request(i))

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, local_hostname="bench.localhost") as smtp:
            while not queue.empty():
                request = queue.get_nowait()
                message = invoice_message(request, request.recipients[0], settings=settings, tenant=tenant,
                                          message_id=f"<{request.dispatch_id}@acme.example>")
                await smtp.sendmail("bounce@bounces.parcours.localhost", [request.recipients[0].email], to_wire(message))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return _per_second(messages, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mail_sign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    settings = Settings()
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "parcours_devstack.smtp_sink", "--smtp-port", str(smtp_port),
                             "--http-port", str(free_port())], stdout=subprocess.PIPE, text=True)
    try:
        sink.stdout.readline()  # the sink prints its addresses once it listens
        result = step_rates(min(args.messages, 500), settings)
        result["accepted_per_s"] = asyncio.run(end_to_end(args.messages, args.connections, settings, smtp_port))
    finally:
        sink.terminate()
        sink.wait(10)
    verdict = "PASS" if result["accepted_per_s"] >= GOAL else "MISS"
    print(json.dumps({k: round(v, 1) for k, v in result.items()}))
    print(f"emails rendered, DKIM-signed and accepted per second: {result['accepted_per_s']:.0f} "
          f"(goal ≥ {GOAL:.0f}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
