"""Row locks, taken in one order for the whole workflow, so that no two services can deadlock.

The order: the **account**, then its **case**, then the case's **violations**, then its **actions**,
then its **appeals**; the **keys** last (``accounts.services.key_states_recompute`` updates them, and the
account's status, while the action is held). A reporting **source**'s row (its act-first standing, see
``detectors``) is updated after the account and case a report holds, and never locks anything itself.
A report's stored outcome is changed only by whoever holds its case; a source's tally row
(``SourceTally``, one shard per database connection) is taken after the account and case, by one upsert
that takes a statement's sources in name order, and locks nothing else (the keys an act-first report then
locks belong to the account it holds).
A service may skip a step but never goes back up: whoever holds a case never asks for its account,
whoever holds an action never asks for its case.

Every lock is ``FOR NO KEY UPDATE OF`` the named table alone: rows reached through a join are not
locked, and an insert that refers to a locked row (an audit event or a violation naming the account)
takes ``FOR KEY SHARE``, which ``NO KEY UPDATE`` does not block. SQLite has no row locks; its writes
are serialised by the database lock instead.
"""

from django.db.models import QuerySet

from accounts.models import Account
from enforcement.errors import NotFound
from enforcement.models import Case, EnforcementAction


def for_update(queryset: QuerySet) -> QuerySet:
    """The queryset's own rows locked for a change that keeps their keys."""
    return queryset.select_for_update(no_key=True, of=("self",))


def lock_account(account_id: int) -> Account:
    try:
        return for_update(Account.objects).get(pk=account_id)
    except Account.DoesNotExist:
        raise NotFound(f"No account {account_id}.") from None


def lock_case(case_id: int) -> Case:
    """Lock a case (not its account: take that first when the change needs it)."""
    try:
        return for_update(Case.objects.select_related("account")).get(pk=case_id)
    except Case.DoesNotExist:
        raise NotFound(f"No case {case_id}.") from None


def lock_action(action_id: int) -> EnforcementAction:
    """Lock an action's account, its case and the action, in that order; ``action.case`` is the locked case.

    The account is locked because changing an action may change the account's keys and status.
    """
    owners = EnforcementAction.objects.filter(pk=action_id).values_list("account_id", "case_id").first()
    if owners is None:
        raise NotFound(f"No action {action_id}.")
    account_id, case_id = owners
    account = lock_account(account_id)
    case = lock_case(case_id)
    action = for_update(EnforcementAction.objects).get(pk=action_id)
    case.account = action.account = account
    action.case = case
    return action
