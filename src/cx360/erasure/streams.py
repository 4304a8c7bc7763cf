"""The event transport's entries of an erased person (a Redis stream, the collector's log): each
message is a Segment-spec call as JSON, theirs when a value in it is one of their identifiers once
normalised, or their record id, e-mail, handle, phone or full name appears in its text."""

from __future__ import annotations

from pathlib import Path

from cx360.erasure.subject import Subject
from cx360.privacy.suppression import Suppression
from cx360.stream.transport import Transport


def matcher(root: Path, subject: Subject, region: str | None) -> Suppression:
    """A suppression list of this one person, for the tests ingest makes against the whole list."""
    mine = Suppression(root, region=region)
    mine.hashes = {mine.hash(kind, value) for kind, value in subject.suppressed()}
    return mine


def erase_entries(transport: Transport, root: Path, subject: Subject, region: str | None) -> int:
    """Remove the person's entries from `transport`; returns how many."""
    mine = matcher(root, subject, region)
    return transport.erase(lambda message: mine.touches(message.decode("utf-8", "replace")))
