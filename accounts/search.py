"""Finding accounts from what a staff member types: an account id, a name or an email by its start (in any
case), a key prefix by its start. The console resolves a search term to account ids with this one small
query, then filters its lists by those ids (an indexed ``IN``), never by an OR across a join.

On PostgreSQL the id, name and email lookups are served by the trigram indexes of migration
``0003_account_search_indexes``; the key prefix by the pattern index of its unique column."""

from django.db.models import Q

from accounts.models import Account, APIKey
from accounts.tokens import PREFIX_LENGTH, kind_of

ACCOUNT_PREFIX = "acct_"
MATCH_LIMIT = 500  # a term matching more accounts than this is too vague to list by: the first ones are used
MIN_TEXT_LENGTH = 3  # shorter terms match ids exactly only (a trigram needs three characters)


def account_condition(term: str) -> Q | None:
    """The accounts a term names, as a condition on Account (None when it names none by its text)."""
    term = term.strip()
    if not term:
        return None
    condition = Q(public_id__iexact=term)
    if len(term) >= MIN_TEXT_LENGTH:
        condition |= Q(public_id__istartswith=term) | Q(email__istartswith=term) | Q(name__icontains=term)
        if not term.lower().startswith(ACCOUNT_PREFIX):
            condition |= Q(public_id__istartswith=ACCOUNT_PREFIX + term)
    return condition


def matching_account_ids(term: str, *, limit: int = MATCH_LIMIT) -> list[int]:
    """Ids of the accounts a term finds (by id, name, email or key prefix), at most ``limit`` of them."""
    term = term.strip()
    condition = account_condition(term)
    ids: set[int] = set()
    if condition is not None:
        ids.update(Account.objects.filter(condition).order_by().values_list("pk", flat=True)[:limit])
    if kind_of(term):
        keys = APIKey.objects.filter(prefix__startswith=term[:PREFIX_LENGTH]).order_by()
        ids.update(keys.values_list("account_id", flat=True)[:limit])
    return sorted(ids)[:limit]
