"""Email addresses as the suite compares them: one form for lookup, storage, uniqueness and counting."""

from __future__ import annotations

import unicodedata


def normalise_email(raw: str) -> str:
    """The address as looked up, stored, kept unique and counted: NFKC, case-folded (NFKC again, as case folding
    may undo it), trimmed. Accent and case variants that a database collation would match are one address here,
    and the column compares bytes (binary collation on MariaDB), so nothing else matches."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", raw).casefold())
    return folded.strip()
