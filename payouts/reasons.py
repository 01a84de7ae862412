"""A reviewer's free-text reason: ONE validator for every door.

The review services call `clean_reason` before they read or write anything, so the API (400 with
the error envelope), the admin change page and the bulk actions (a message) refuse the same input
with the same words, and nothing is written. Refused: control characters other than newline and
tab (a NUL cannot be stored by PostgreSQL at all and was a 500; the others corrupt what the audit
trail shows), lone surrogates (not encodable as UTF-8: another 500), and more than
MAX_REASON_LENGTH characters. A browser sends a textarea's line breaks as CRLF: they become "\n".
A decision in REASON_REQUIRED (a reject) is refused without a reason (400 reason_required), by the
same services for every door, before anything is read for writing.
"""

import re

from core.errors import ValidationError
from payouts.errors import PayoutErrorCode

MAX_REASON_LENGTH = 2000
# Unicode's control characters (category Cc: C0, DEL, C1) but newline and tab, and the surrogates
# (category Cs), as one character class: a regex scans a long input at C speed.
REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_reason(reason: object) -> str:
    """The reason as stored (line breaks normalised, surrounding blanks trimmed), or ValidationError."""
    if not isinstance(reason, str):
        raise ValidationError("The reason must be text.", code=PayoutErrorCode.INVALID_REASON)
    # Checked before trimming: str.strip() would silently drop some controls (U+001C-U+001F, U+0085).
    text = reason.replace("\r\n", "\n").replace("\r", "\n")
    refused = REFUSED.search(text)
    if refused is not None:
        position = refused.start() + 1
        raise ValidationError(
            f"The reason contains a control character (U+{ord(refused.group()):04X} at position {position}): "
            "only text, line breaks and tabs are allowed.",
            code=PayoutErrorCode.INVALID_REASON,
            position=position,
        )
    text = text.strip()
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationError(
            f"The reason is {len(text)} characters long: at most {MAX_REASON_LENGTH} are allowed.",
            code=PayoutErrorCode.INVALID_REASON,
            max_length=MAX_REASON_LENGTH,
        )
    return text


# Decisions a reviewer must explain: a rejection is final for the request, and its reason is what
# the affiliate and the next reviewer read.
REASON_REQUIRED = frozenset({"reject"})


def clean_decision_reason(*, transition: str, reason: object) -> str:
    """clean_reason, and a refusal of an empty (or blank) reason for a decision in REASON_REQUIRED.

    payouts.services.review runs it for every review, whatever the door; the admin's bulk reject
    also runs it before its loop, so that its page asks again once instead of refusing each row."""
    text = clean_reason(reason)
    if not text and transition in REASON_REQUIRED:
        raise ValidationError(
            f"A reason is required to {transition}: enter it in the reason field.",
            code=PayoutErrorCode.REASON_REQUIRED,
            transition=transition,
        )
    return text


def shown_draft(reason: str) -> str:
    """A refused reason as the form may show it again: each refused character (a NUL, a lone
    surrogate) replaced by U+FFFD, which the reviewer sees and can correct, and the page can encode."""
    return REFUSED.sub("\ufffd", reason)
