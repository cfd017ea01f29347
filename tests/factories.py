import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Account, APIKey
from accounts.tokens import generate_token, hash_token, prefix_of
from enforcement.actors import SYSTEM
from enforcement.models import Case, EnforcementAction, Rule, Violation
from enforcement.services import service_token_create


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    public_id = factory.Sequence(lambda n: f"acct_test{n:011d}")
    name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"owner{n}@customer.example")


class APIKeyFactory(factory.django.DjangoModelFactory):
    """Keys made with a real token; the token is kept on the instance (never in the database)."""

    class Meta:
        model = APIKey

    account = factory.SubFactory(AccountFactory)
    kind = "secret"
    base_rate_limit_per_minute = 1000
    base_ip_rate_limit_per_minute = 100
    rate_limit_per_minute = factory.SelfAttribute("base_rate_limit_per_minute")
    ip_rate_limit_per_minute = factory.SelfAttribute("base_ip_rate_limit_per_minute")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        token = generate_token(kwargs["kind"])
        kwargs.setdefault("prefix", prefix_of(token))
        kwargs.setdefault("token_sha256", hash_token(token))
        key = super()._create(model_class, *args, **kwargs)
        key.token = token
        return key


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@millimetric.ai")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        self.save()


class _Backdated(factory.django.DjangoModelFactory):
    """History as it stood: ``auto_now_add`` times (``_backdated``) are written as given, after the insert."""

    _backdated: tuple[str, ...] = ()

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        times = {name: kwargs.pop(name) for name in cls._backdated if kwargs.get(name) is not None}
        obj = super()._create(model_class, *args, **kwargs)
        if times:
            model_class.objects.filter(pk=obj.pk).update(**times)
            for name, value in times.items():
                setattr(obj, name, value)
        return obj


class CaseFactory(_Backdated):
    """A case of the past (closed, so an account may have several); no violations of its own."""

    class Meta:
        model = Case

    _backdated = ("opened_at",)
    account = factory.SubFactory(AccountFactory)
    status = Case.Status.CLOSED
    severity = "medium"


class ViolationFactory(_Backdated):
    """``ViolationFactory(rule=..., account=..., severity=..., reported_at=...)``: a violation in its own case
    unless ``case`` is given."""

    class Meta:
        model = Violation

    _backdated = ("reported_at",)
    account = factory.SubFactory(AccountFactory)
    case = factory.SubFactory(CaseFactory, account=factory.SelfAttribute("..account"))
    rule = factory.LazyFunction(lambda: Rule.objects.get(code="covert-tracking"))
    severity = "medium"
    source = "factory"
    external_id = factory.Sequence(lambda n: f"factory-{n}")
    reported_by = "factory"
    observed_at = factory.LazyFunction(timezone.now)
    summary = "Made by a factory."


class EnforcementActionFactory(_Backdated):
    """An action on a case, applied by default (a strike) at ``applied_at``, created then too."""

    class Meta:
        model = EnforcementAction

    _backdated = ("created_at",)
    case = factory.SubFactory(CaseFactory)
    account = factory.SelfAttribute("case.account")
    kind = "warning"
    status = EnforcementAction.Status.APPLIED
    reason = "Made by a factory."
    requested_by_label = "factory"
    applied_at = factory.LazyFunction(timezone.now)
    created_at = factory.SelfAttribute("applied_at")


def rule(code: str) -> Rule:
    return Rule.objects.get(code=code)


def missing_pk(model) -> int:
    """A primary key no row of ``model`` has: tests never guess which ids the database hands out."""
    return (model.objects.aggregate(highest=Max("pk"))["highest"] or 0) + 1000


def token_client(name: str, scopes: list[str], *, trusted: bool = False) -> APIClient:
    """An API client holding a new service token ``name`` with these scopes (its row and raw token kept on it)."""
    token, raw = service_token_create(actor=SYSTEM, name=name, scopes=scopes, trusted=trusted)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.token = token
    client.raw_token = raw
    return client
