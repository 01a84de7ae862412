"""What the payouts admin tests share: the pages' addresses, a signed-in client, the messages shown."""

from django.test import Client

from payouts.models import Payout

CHANGELIST = "/admin/payouts/payout/"


def change_url(payout: Payout) -> str:
    return f"/admin/payouts/payout/{payout.pk}/change/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]
