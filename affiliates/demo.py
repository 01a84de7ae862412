from typing import TextIO

from django.contrib.auth import get_user_model

from affiliates.models import Affiliate, KycStatus

AFFILIATES = [
    ("bronze_bea", 20, KycStatus.VERIFIED),
    ("gold_gus", 25, KycStatus.VERIFIED),
    ("new_nia", 20, KycStatus.PENDING),
]


def seed(*, stdout: TextIO) -> None:
    for username, rate, kyc in AFFILIATES:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        if created:
            user.set_password("demo-pass-affiliate")
            user.save(update_fields=["password"])
        Affiliate.objects.get_or_create(
            user=user, defaults={"commission_rate": rate, "kyc_status": kyc, "wise_recipient_id": f"rcpt-{username}"}
        )
    stdout.write(f"{len(AFFILIATES)} affiliates ready")
