"""lib/compiled.py: a queryset compiled once answers every later call as the queryset itself would, with each
call's own values; a query whose values cannot be told apart is never kept; a locking read still needs a
transaction."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count, F
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Account
from enforcement.models import Source
from enforcement.services.locks import for_update
from lib.compiled import _UNCACHEABLE, CompiledQuery
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def _named(public_id: str, name: str):
    return Account.objects.filter(public_id=public_id, name=name).annotate(n=Count("keys"), twice=F("id") * 2)


def test_later_calls_run_the_kept_sql_with_their_own_values():
    a = AccountFactory(public_id="acct_a", name="Alpha")
    b = AccountFactory(public_id="acct_b", name="Beta")
    query = CompiledQuery(_named)
    assert query.first("acct_a", "Alpha") == a
    assert [t for t in query._templates.values() if t is not _UNCACHEABLE]  # kept
    for public_id, name, expected in [("acct_b", "Beta", b), ("acct_a", "Beta", None), ("acct_b", "Alpha", None),
                                      ("acct_a", "Alpha", a), ("nobody", "Beta", None)]:
        with CaptureQueriesContext(connection) as queries:
            found = query.first(public_id, name)
        assert found == expected == _named(public_id, name).first()
        assert len(queries) == 1
        if found is not None:
            assert (found.n, found.twice, found.email) == (0, found.pk * 2, expected.email)  # annotations, fields


def test_equal_values_at_first_still_map_each_to_its_own_parameter():
    same = AccountFactory(public_id="same", name="same")
    other = AccountFactory(public_id="acct_c", name="Gamma")
    query = CompiledQuery(_named)
    assert query.first("same", "same") == same
    assert query.first("acct_c", "Gamma") == other
    assert query.first("same", "Gamma") is None


def test_select_related_and_typed_values_come_back_as_the_queryset_loads_them(detector_token):
    Source.objects.create(name="ratewatch", owner_token=detector_token)
    query = CompiledQuery(lambda name, pk: Source.objects.select_related("owner_token").filter(name=name, pk__gte=pk))
    query.first("ratewatch", 0)
    source = query.first("ratewatch", 1)
    with CaptureQueriesContext(connection) as queries:
        assert source.owner_token.created_by_id == detector_token.created_by_id
    assert len(queries) == 0  # loaded with the source


def test_a_value_the_orm_transforms_is_never_kept():
    AccountFactory(public_id="acct_d", name="Delta")
    query = CompiledQuery(lambda fragment: Account.objects.filter(name__icontains=fragment))
    assert query.first("elt").public_id == "acct_d"  # the parameter is %elt%: no value maps to it
    assert list(query._templates.values()) == [_UNCACHEABLE]
    assert query.first("zzz") is None
    assert query.first("Del").public_id == "acct_d"


def test_datetimes_are_values_too():
    account = AccountFactory()
    query = CompiledQuery(lambda pk, since: Account.objects.filter(pk=pk, created_at__gte=since))
    now = timezone.now()
    assert query.first(account.pk, now - timedelta(days=1)) == account
    assert query.first(account.pk, now + timedelta(days=1)) is None
    assert query.first(account.pk, now - timedelta(hours=1)) == account


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_locking_read_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    account = AccountFactory()
    query = CompiledQuery(lambda pk: for_update(Account.objects).filter(pk=pk))
    with transaction.atomic():
        assert query.first(account.pk) == account
        assert query.first(account.pk) == account  # the kept SQL
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            for_update(Account.objects).filter(pk=account.pk).first()
        with pytest.raises(TransactionManagementError):
            query.first(account.pk)
