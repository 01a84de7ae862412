"""Writes owned by the audit app: raising and acknowledging beacon alerts."""

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import structlog
from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from audit.models import BeaconAlert, BeaconCount
from audit.selectors import beacon_subject, critical_beacons
from audit.severity import beacon_kind, critical_kinds
from core.admin_links import absolute_url

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = structlog.get_logger(__name__)

MAX_NAMED = 20  # critical beacons a mail lists one by one; the admin lists them all


def raise_beacon_alerts(*, now: datetime | None = None) -> list[BeaconAlert]:
    """Raise one alert per (kind, hour) that calls for one, and mail the admins once for it: a
    critical kind (audit.severity) on its first beacon, any other once its count reaches
    BEACON_ALERT_THRESHOLD. The alert row's UNIQUE (kind, hour) is the claim, so two beat ticks, or
    two runs at the same moment, mail once."""
    now = now or timezone.now()
    due = Q(count__gte=settings.BEACON_ALERT_THRESHOLD) | Q(kind__in=critical_kinds())
    recent = BeaconCount.objects.filter(due, hour__gte=now - timedelta(hours=2)).order_by("hour", "kind")
    raised = []
    for counted in recent:
        alert = _raise_once(counted, now)
        if alert is not None:
            raised.append(alert)
    return raised


def acknowledge_alert(*, alert_id: int, actor: "User") -> int:
    return BeaconAlert.objects.filter(pk=alert_id, acknowledged_at__isnull=True).update(
        acknowledged_by=actor, acknowledged_at=timezone.now()
    )


def _raise_once(counted: BeaconCount, now: datetime) -> BeaconAlert | None:
    try:
        with transaction.atomic():
            alert = BeaconAlert.objects.create(
                kind=counted.kind,
                hour=counted.hour,
                count=counted.count,
                severity=beacon_kind(counted.kind).severity,
                raised_at=now,
            )
    except IntegrityError:
        BeaconAlert.objects.filter(kind=counted.kind, hour=counted.hour).update(count=counted.count)
        return None
    logger.error(
        "beacon_alert_raised", kind=alert.kind, severity=alert.severity, count=alert.count, hour=alert.hour.isoformat()
    )
    transaction.on_commit(lambda: _mail(alert))
    return alert


def _mail(alert: BeaconAlert) -> None:
    subject, message = _critical_mail(alert) if beacon_kind(alert.kind).critical else _threshold_mail(alert)
    mail_admins(subject=subject, message=message, fail_silently=False)


def _threshold_mail(alert: BeaconAlert) -> tuple[str, str]:
    return f"{alert.count} x {alert.kind} in one hour", (
        f"{alert.count} '{alert.kind}' beacons in the hour from {alert.hour:%Y-%m-%d %H:00} UTC "
        f"(threshold {settings.BEACON_ALERT_THRESHOLD}). Lost races or refused transitions at this "
        "rate mean reviewers or workers are colliding: look at the race beacons in the admin.\n\n"
        + _changelist_url("admin:audit_beaconcount_changelist", kind=alert.kind)
    )


def _critical_mail(alert: BeaconAlert) -> tuple[str, str]:
    """Names each object from the critical beacons' details, with a link to its admin page."""
    seen = list(critical_beacons(kind=alert.kind, hour=alert.hour)[:MAX_NAMED])
    lines = [
        f"'{alert.kind}' is a critical beacon: it alerts on the first one, once per hour. "
        f"{alert.count} in the hour from {alert.hour:%Y-%m-%d %H:00} UTC so far; later ones in this "
        "hour are listed in the admin, not mailed again.",
    ]
    for beacon in seen:
        name, path = beacon_subject(beacon)
        lines += ["", f"{name or alert.kind} at {beacon.at:%Y-%m-%d %H:%M:%S} UTC"]
        lines += [f"  {absolute_url(path)}"] if path else []
        lines += [f"  details: {json.dumps(beacon.details, sort_keys=True, ensure_ascii=False)}"]  # '€', not '\u20ac'
    lines += ["", f"All of them: {_changelist_url('admin:audit_criticalbeacon_changelist', kind=alert.kind)}"]
    first = beacon_subject(seen[0])[0] if seen else None
    return f"CRITICAL {alert.kind}" + (f": {first}" if first else ""), "\n".join(lines)


def _changelist_url(name: str, **filters: str) -> str:
    return absolute_url(f"{reverse(name)}?{urlencode(filters)}")
