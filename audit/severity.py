"""Beacon kinds and their severity: the one registry the alert job reads.

A kind is NORMAL unless the app that owns it registers it otherwise, from its AppConfig.ready()
(audit imports no domain app, so it cannot list their kinds itself). NORMAL kinds alert at
BEACON_ALERT_THRESHOLD in one hour: a lost race now and then is the design working. CRITICAL kinds
alert on their first occurrence: money that moved where a human must settle it, a dead letter, the
books out of balance; one of them is already one too many.

`subject` names the model whose primary key the beacon's details carry under `subject_key`, so the
alert mail names the object and links to its admin page ("payouts.Payout", "object_id").
"""

from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import ImproperlyConfigured


class Severity(StrEnum):
    NORMAL = "normal"
    CRITICAL = "critical"


@dataclass(frozen=True)
class BeaconKind:
    name: str
    severity: Severity = Severity.NORMAL
    subject: str = ""  # "<app_label>.<ModelName>", or "" when the beacon names no single object
    subject_key: str = "object_id"

    @property
    def critical(self) -> bool:
        return self.severity == Severity.CRITICAL


_kinds: dict[str, BeaconKind] = {}


def register_beacon_kind(
    name: str, *, severity: Severity, subject: str = "", subject_key: str = "object_id"
) -> BeaconKind:
    """Declare a kind's severity (and the object its details name). Idempotent; a second, different
    declaration of the same kind is a configuration error, not a silent override."""
    kind = BeaconKind(name=name, severity=severity, subject=subject, subject_key=subject_key)
    declared = _kinds.setdefault(name, kind)
    if declared != kind:
        raise ImproperlyConfigured(f"Beacon kind {name!r} is declared twice: {declared} and {kind}.")
    return kind


def beacon_kind(name: str) -> BeaconKind:
    return _kinds.get(name) or BeaconKind(name=name)


def critical_kinds() -> list[str]:
    return sorted(name for name, kind in _kinds.items() if kind.critical)
