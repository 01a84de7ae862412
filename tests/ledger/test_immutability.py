"""Transfers are immutable in the database itself: the trigger refuses UPDATE and DELETE from the
ORM and from raw SQL alike; accounts holding transfers cannot be deleted."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import ProtectedError

from ledger.models import Transfer
from tests.ledger.conftest import earn

pytestmark = pytest.mark.django_db


@pytest.fixture
def transfer(payable, expense):
    return earn(payable, expense, 100, transfer_id="commission:1:earn")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_transfer SET amount = 1 WHERE id = 'commission:1:earn'",
        "UPDATE ledger_transfer SET reference = 'edited'",
        "DELETE FROM ledger_transfer WHERE id = 'commission:1:earn'",
    ],
)
def test_raw_sql_cannot_change_or_delete_a_transfer(transfer, sql):
    with (
        pytest.raises(DatabaseError, match="ledger_transfer is immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert Transfer.objects.get(pk=transfer.pk).amount == 100


def test_the_orm_cannot_either(transfer):
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Transfer.objects.filter(pk=transfer.pk).update(amount=1)
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Transfer.objects.filter(pk=transfer.pk).delete()
    transfer.amount = 1
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        transfer.save()
    assert Transfer.objects.get(pk=transfer.pk).amount == 100


def test_an_account_with_transfers_cannot_be_deleted(transfer, payable):
    with pytest.raises(ProtectedError):
        payable.delete()
