"""Fixtures for the admin console tests: logged-in clients per role and cases made through the services."""

import itertools

import pytest
from django.test import Client

from enforcement import services
from tests.factories import AccountFactory, APIKeyFactory, UserFactory

_external_ids = itertools.count(1)


def report(actor, account, *, rule="secrets-in-events", severity=None, key=None, evidence=None, summary=None,
           external_id=None):
    """Report a violation through the service, as a detector would."""
    return services.violation_report(
        actor=actor, account=account, rule=rule, source=f"test-detector-{actor.identity}",  # sources are per reporter
        external_id=external_id or f"ext-{next(_external_ids)}",
        summary=summary or f"{rule} seen in events", severity=severity, api_key=key, evidence=evidence,
    )


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def agent_client(agent):
    return login(agent)


@pytest.fixture
def lead_client(lead):
    return login(lead)


@pytest.fixture
def second_lead_client(second_lead):
    return login(second_lead)


@pytest.fixture
def auditor_client(auditor):
    return login(auditor)


@pytest.fixture
def outsider_client(outsider):
    return login(outsider)


@pytest.fixture
def superuser_client(superuser):
    return login(superuser)


@pytest.fixture
def make_account(db):
    def make(n_keys: int = 2, **kwargs):
        account = AccountFactory(**kwargs)
        kinds = ["secret", "publishable", "restricted"]
        account.test_keys = [APIKeyFactory(account=account, kind=kinds[i % 3]) for i in range(n_keys)]
        return account

    return make


@pytest.fixture
def high_case(make_account, as_detector):
    """An open high-severity case: the ladder recommends a throttle."""
    account = make_account()
    result = report(as_detector, account, rule="special-category-data", severity="high",
                    evidence={"event": "signup", "card_number": "4111 1111 1111 1111", "password": "hunter2"})
    case = result.violation.case
    case.test_account = account
    return case


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def confirm(client, page, url: str, **overrides):
    """Press the confirm button of a confirmation page: post its form's fields (``hidden``) as they are."""
    data: dict[str, list[str]] = {}
    for name, value in page.context["hidden"]:
        data.setdefault(name, []).append(str(value))
    data.update(overrides)
    return client.post(url, data, follow=True)
