"""schemathesis against every service's own OpenAPI, with a tenant key: for a few generated requests per
operation (valid and invalid ones), no answer is a server error and every answer matches what the
document says of its status (schema and content type). Few examples, derandomised: a smoke net that
runs in the suite, not a fuzzing campaign."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

EXAMPLES = 6  # per operation
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
SETTINGS = {"channels": {"dns_nameservers": ["127.0.0.1"], "dns_port": 9, "dns_timeout": 0.2},
            "dunning": {"time_travel": True}}


def fuzz(operation, base_url: str, headers: dict[str, str]) -> list[str]:
    """The failures of `operation` over a few generated cases (runs in a thread: schemathesis calls are blocking)."""
    failures: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, FailureGroup) as failure:  # each with schemathesis' report (and a curl to replay)
            failures.append(f"{operation.label}: {str(failure).strip()[:600]}")

    run()
    return failures


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("service", ["ingest", "router", "channels", "tracker", "dunning", "portal"])
async def test_every_operation_answers_as_documented(service, run_service, tenant_key):
    host = await run_service(service, **SETTINGS.get(service, {}))
    key = await tenant_key(host)
    async with httpx.AsyncClient(base_url=host.url) as client:
        spec = (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        failures += await asyncio.to_thread(fuzz, operation, host.url, headers)
    assert not failures, f"{len(failures)} answers not as documented:\n" + "\n\n".join(dict.fromkeys(failures))
