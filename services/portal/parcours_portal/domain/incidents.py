"""What a credit manager may do about an incident, and what each answer asks of the others:
the tracker settles the incident (IncidentResolutionRequested), the router delivers the invoice
again for a resend or a switch of channel (RedeliveryRequested). Pure functions."""

from __future__ import annotations

ACTIONS = ("resolve", "called", "resend", "switch_channel")
REDELIVER = {"resend", "switch_channel"}


def action_errors(*, action: str, note: str, channel: str, channels: list[str]) -> dict[str, str]:
    """Field errors (message keys) of an answer to an incident; empty when it may go."""
    errors = {}
    if action not in ACTIONS:
        errors["action"] = "field.required"
    if action == "resolve" and not note.strip():
        errors["resolution"] = "field.required"
    if action == "switch_channel" and channel not in channels:
        errors["channel"] = "field.required"
    return errors


def resolution(*, action: str, note: str, channel: str | None) -> str:
    """The resolution the tracker records: what was done, then the user's note."""
    done = {"resolve": "", "called": "customer called", "resend": "invoice sent again",
            "switch_channel": f"invoice sent again on {channel}"}[action]
    return " — ".join(part for part in (done, note.strip()) if part)
