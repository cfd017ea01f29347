import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max

from accounts.models import Account, APIKey
from accounts.tokens import generate_token, hash_token, prefix_of
from enforcement.models import Rule


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


def rule(code: str) -> Rule:
    return Rule.objects.get(code=code)


def missing_pk(model) -> int:
    """A primary key no row of ``model`` has: tests never guess which ids the database hands out."""
    return (model.objects.aggregate(highest=Max("pk"))["highest"] or 0) + 1000
