"""The corpus stays large and covers what issue #9 lists (the attacks themselves run per service)."""

from __future__ import annotations

from tests.ingest.test_ingest_hostile import HOSTILE

from .test_hostile_directory import CHANNELS_CASES, DUNNING_CASES, PEPPOL_WEBHOOK_CASES, ROUTER_CASES  # noqa: TID252
from .test_hostile_ingest import BATCH_CASES, INVOICE_CASES  # noqa: TID252
from .test_hostile_tracker import ACK_CASES, CAMT_CASES, PAYMENT_CASES  # noqa: TID252

CORPUS = {"ingest documents": [c.name for c in HOSTILE], "ingest invoices": [c.name for c in INVOICE_CASES],
          "ingest batches": [c.name for c in BATCH_CASES], "router": [c.name for c in ROUTER_CASES],
          "dunning": [c.name for c in DUNNING_CASES],
          "channels": [c.name for c in CHANNELS_CASES + PEPPOL_WEBHOOK_CASES],
          "tracker": [c.name for c in ACK_CASES + CAMT_CASES + PAYMENT_CASES]}


def test_the_corpus_has_at_least_200_cases_covering_the_issue():
    names = [name for cases in CORPUS.values() for name in cases]
    print({service: len(cases) for service, cases in CORPUS.items()}, len(names))
    assert len(names) >= 200
    for kind in ("xxe", "dtd", "laughs", "nesting", "decompression-bomb", "javascript", "oversize", "text-plain",
                 "broken-utf8", "formula", "macros", "line-total-wrong", "duplicate", "negative", "year-",
                 "forged-signature", "stale-timestamp", "replay", "slow-upload"):
        assert any(kind in name for name in names), f"no {kind} case"
