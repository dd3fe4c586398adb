"""What makes a customer's directory entry acceptable, beyond its schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@dataclass(frozen=True)
class Issue:
    """One problem with a customer entry: where (a path into the entry) and why."""

    path: tuple[str | int, ...]
    detail: str
    code: str


def check_customer(*, contact_emails: Sequence[str], channels: Sequence[str], offered: Sequence[str],
                   tags: Sequence[str] = (), timezone: str | None = None) -> list[Issue]:
    """Every issue of a customer entry against the channels the platform offers (empty: acceptable)."""
    return [*_duplicate_contacts(contact_emails), *_channel_issues(channels, offered), *_duplicate_tags(tags),
            *_zone_issues(timezone)]


def _zone_issues(timezone: str | None) -> list[Issue]:
    """A time zone must be one the IANA database names (services read it with zoneinfo)."""
    if timezone is None:
        return []
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [Issue(("timezone",), f"Unknown time zone {timezone!r}; use an IANA name such as Europe/Paris.",
                      "unknown_time_zone")]
    return []


def _duplicate_tags(tags: Sequence[str]) -> list[Issue]:
    seen: set[str] = set()
    issues = []
    for index, tag in enumerate(tags):
        if tag in seen:
            issues.append(Issue(("tags", index), f"Tag {tag!r} is listed twice.", "duplicate"))
        seen.add(tag)
    return issues


def _duplicate_contacts(emails: Sequence[str]) -> list[Issue]:
    issues, seen = [], set()
    for index, email in enumerate(emails):
        key = email.casefold()  # one mailbox, however it is capitalised
        if key in seen:
            issues.append(Issue(("contacts", index, "email"), f"{email} is already a contact of this customer.",
                                "duplicate"))
        seen.add(key)
    return issues


def _channel_issues(channels: Sequence[str], offered: Sequence[str]) -> list[Issue]:
    issues, seen = [], set()
    for index, channel in enumerate(channels):
        if channel not in offered:
            issues.append(Issue(("channels", index),
                                f"Unknown channel {channel!r}; offered channels: {', '.join(offered)}.",
                                "unknown_channel"))
        elif channel in seen:
            issues.append(Issue(("channels", index), f"Channel {channel!r} is listed twice.", "duplicate"))
        seen.add(channel)
    return issues
