"""A reviewer's free-text reason: ONE validator for every door.

The review services call `clean_reason` before they read or write anything, so the API (400 with
the error envelope), the admin change page and the bulk actions (a message) refuse the same input
with the same words, and nothing is written. Refused: control characters other than newline and
tab (a NUL cannot be stored by PostgreSQL at all and was a 500; the others corrupt what the audit
trail shows), lone surrogates (not encodable as UTF-8: another 500), and more than
MAX_REASON_LENGTH characters. A browser sends a textarea's line breaks as CRLF: they become "\n".
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
