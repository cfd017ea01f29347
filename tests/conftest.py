import pytest

from accounts import edge
from config.celery import app as celery_app
from enforcement.actors import SYSTEM, Actor
from enforcement.services import service_token_create
from tests import fuzzing
from tests.factories import AccountFactory, APIKeyFactory, UserFactory
from tests.required_services import require_services


def pytest_report_header(config):
    return fuzzing.describe()


def pytest_terminal_summary(terminalreporter):
    """The schemathesis seed again at the end (``-q`` hides the header), when its tests ran."""
    reports = (report for reports in terminalreporter.stats.values() for report in reports)
    if any("tests/api/test_schema.py::test_api_" in getattr(report, "nodeid", "") for report in reports):
        terminalreporter.write_line(fuzzing.describe())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked ``postgres``, ``redis`` or ``browser`` skip without the service, and fail in CI."""
    require_services(item)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STAFF_ALERT_EMAILS = ["oncall@millimetric.ai"]
    # The production hasher costs ~0.3 s per password; tests make many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _private_edge_store(tmp_path):
    """Keep each test's key publications out of the shared edge store (tests/edge/ swaps in its own)."""
    edge.use_store(edge.SQLiteEdgeStore(tmp_path / "edge.sqlite3"))
    yield
    edge.use_store(None)


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in-process unless a test starts a real worker (see tests/test_worker_e2e.py)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run a service call and then its on-commit work (eager tasks), as a real commit would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


@pytest.fixture
def agent(db):
    return UserFactory(username="agent", role="tns_agent")


@pytest.fixture
def lead(db):
    return UserFactory(username="lead", role="tns_lead")


@pytest.fixture
def second_lead(db):
    return UserFactory(username="lead2", role="tns_lead")


@pytest.fixture
def auditor(db):
    return UserFactory(username="auditor", role="tns_auditor")


@pytest.fixture
def outsider(db):
    """Logged in, staff flag set, but no role: may see nothing and do nothing."""
    return UserFactory(username="outsider")


@pytest.fixture
def as_agent(agent):
    return Actor.for_user(agent)


@pytest.fixture
def as_lead(lead):
    return Actor.for_user(lead)


@pytest.fixture
def as_second_lead(second_lead):
    return Actor.for_user(second_lead)


@pytest.fixture
def account(db):
    return AccountFactory()


@pytest.fixture
def keys(account):
    return [
        APIKeyFactory(account=account, kind="publishable"),
        APIKeyFactory(account=account, kind="secret"),
        APIKeyFactory(account=account, kind="restricted"),
    ]


@pytest.fixture
def detector_token(db):
    """An untrusted detector: may report, nothing else."""
    token, raw = service_token_create(actor=SYSTEM, name="detector", scopes=["violations:write"], trusted=False)
    token.raw = raw
    return token


@pytest.fixture
def trusted_detector(db):
    token, raw = service_token_create(
        actor=SYSTEM, name="trusted-detector", scopes=["violations:write", "cases:read"], trusted=True
    )
    token.raw = raw
    return token


@pytest.fixture
def as_trusted_detector(trusted_detector):
    return Actor.for_token(trusted_detector)


@pytest.fixture
def as_detector(detector_token):
    return Actor.for_token(detector_token)

