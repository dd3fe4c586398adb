"""Emails rendered, DKIM-signed and accepted by the local SMTP sink per second (goal ≥ 300/s):
channels' own render → compose → sign path for a branded tenant with a sender domain, handed
to the SMTP sink (its own process) over a few kept-open connections; against the bare baseline
of the same run: one message rendered and signed once, handed over as many times on the same
connections (what SMTP and the sink alone cost). Also the cost of each step alone, per CPU second
of this process, to show where the time goes.

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

from parcours_channels.adapters.mail.compose import invoice_message  # noqa: E402
from parcours_channels.adapters.mail.profile import Sender, TenantMail  # noqa: E402
from parcours_channels.adapters.mail.render import Brand  # noqa: E402
from parcours_channels.config import Settings  # noqa: E402
from parcours_channels.domain.dkim import generate_key  # noqa: E402
from parcours_contracts import DispatchRequested, InvoiceSummary, Recipient  # noqa: E402
from parcours_runtime import eventloop  # noqa: E402
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
    """Messages per CPU second of render+compose alone, and with DKIM signing (one core)."""
    rates = {}
    for label, tenant in (("render_compose_per_core_s", _tenant(False)), ("render_compose_sign_per_core_s", _tenant(True))):
        requests = [_request(i) for i in range(messages)]
        started = time.process_time()
        for request in requests:
            invoice_message(request, request.recipients[0], message_id=f"<{request.dispatch_id}@acme.example>",
                            settings=settings, tenant=tenant).wire
        rates[label] = _per_second(messages, time.process_time() - started)
    return rates


async def end_to_end(messages: int, connections: int, settings: Settings, smtp_port: int, *, bare: bool = False) -> float:
    """Rendered, signed and accepted by the sink, per second (bare: one message built once, sent over and over)."""
    tenant = _tenant(True)
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(messages):
        queue.put_nowait(_request(i))
    first = _request(0)
    prebuilt = invoice_message(first, first.recipients[0], settings=settings, tenant=tenant,
                               message_id=f"<{first.dispatch_id}@acme.example>").wire

    async def worker() -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, local_hostname="bench.localhost") as smtp:
            while not queue.empty():
                request = queue.get_nowait()
                if bare:
                    wire = prebuilt
                else:
                    wire = invoice_message(request, request.recipients[0], settings=settings, tenant=tenant,
                                           message_id=f"<{request.dispatch_id}@acme.example>").wire
                await smtp.sendmail("bounce@bounces.parcours.localhost", [request.recipients[0].email], wire)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return _per_second(messages, time.perf_counter() - started)


def measure(*, messages: int = 2000, connections: int = 8, say=print) -> dict:
    """The figures above, with the sink in its own process for the run."""
    settings = Settings()
    smtp_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "parcours_devstack.smtp_sink", "--smtp-port", str(smtp_port),
                             "--http-port", str(free_port())], stdout=subprocess.PIPE, text=True)
    try:
        sink.stdout.readline()  # the sink prints its addresses once it listens
        result = step_rates(min(messages, 500), settings)
        result["bare_accepted_per_s"] = eventloop.run(end_to_end(messages, connections, settings, smtp_port, bare=True))
        result["accepted_per_s"] = eventloop.run(end_to_end(messages, connections, settings, smtp_port))
    finally:
        sink.terminate()
        sink.wait(10)
    result = {"messages": messages, "connections": connections, **{k: round(v, 1) for k, v in result.items()},
              "ratio": round(result["accepted_per_s"] / result["bare_accepted_per_s"], 3), "goal": GOAL}
    verdict = "PASS" if result["accepted_per_s"] >= GOAL else "MISS"
    say(f"  emails rendered, DKIM-signed and accepted: {result['accepted_per_s']:.0f}/s (goal ≥ {GOAL:.0f}: {verdict}); "
        f"bare SMTP to the sink {result['bare_accepted_per_s']:.0f}/s → {result['ratio']:.0%}; per core: render+compose "
        f"{result['render_compose_per_core_s']:.0f}/s, with DKIM {result['render_compose_sign_per_core_s']:.0f}/s")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mail_sign", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    print(json.dumps(measure(messages=args.messages, connections=args.connections), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
