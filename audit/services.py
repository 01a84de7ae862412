"""Writes owned by the audit app: raising and acknowledging beacon alerts."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from django.conf import settings
from django.core.mail import mail_admins
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import BeaconAlert, BeaconCount

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = structlog.get_logger(__name__)


def raise_beacon_alerts(*, now: datetime | None = None) -> list[BeaconAlert]:
    """Raise one alert per (kind, hour) whose count reached the threshold, and mail the admins
    once for it: the alert row's UNIQUE (kind, hour) is the claim, so two beat ticks mail once."""
    now = now or timezone.now()
    recent = BeaconCount.objects.filter(
        hour__gte=now - timedelta(hours=2), count__gte=settings.BEACON_ALERT_THRESHOLD
    ).order_by("hour", "kind")
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
            alert = BeaconAlert.objects.create(kind=counted.kind, hour=counted.hour, count=counted.count, raised_at=now)
    except IntegrityError:
        BeaconAlert.objects.filter(kind=counted.kind, hour=counted.hour).update(count=counted.count)
        return None
    logger.error("beacon_alert_raised", kind=alert.kind, count=alert.count, hour=alert.hour.isoformat())
    transaction.on_commit(lambda: _mail(alert))
    return alert


def _mail(alert: BeaconAlert) -> None:
    mail_admins(
        subject=f"{alert.count} x {alert.kind} in one hour",
        message=(
            f"{alert.count} '{alert.kind}' beacons in the hour from {alert.hour:%Y-%m-%d %H:00} UTC "
            f"(threshold {settings.BEACON_ALERT_THRESHOLD}). Lost races or refused transitions at this "
            "rate mean reviewers or workers are colliding: look at the race beacons in the admin."
        ),
        fail_silently=False,
    )
