"""The rule catalogue (the policy as data), edited by leads."""

from django.db import transaction

from enforcement import ladder
from enforcement.actors import EDIT_RULES, Actor
from enforcement.audit import audit_record, snapshot
from enforcement.errors import ValidationFailed
from enforcement.models import Rule, RuleVersion

RULE_FIELDS = ["title", "clause", "description", "default_severity", "ladder_overrides", "strike_window_days",
               "act_first", "auto_action", "publishable_key_exposure_is_violation", "dsa_category", "dsa_illegal",
               "dsa_legal_ground", "is_active"]


@transaction.atomic
def rule_save(*, actor: Actor, rule: Rule) -> Rule:
    """Create or edit a rule of the catalogue (the policy as data), with its audit event.

    Every change is a new version, kept in ``RuleVersion``: an action records the versions it was decided
    under, so its statement of reasons can name the policy as it then stood."""
    actor.require(EDIT_RULES, "Only a lead may edit the rule catalogue.")
    problems = ladder.validate_overrides(rule.ladder_overrides)
    if problems:
        raise ValidationFailed("The ladder overrides are not valid.", fields={"ladder_overrides": problems})
    creating = rule.pk is None
    before = None if creating else snapshot(Rule.objects.select_for_update().get(pk=rule.pk), RULE_FIELDS)
    after = snapshot(rule, RULE_FIELDS)
    if before is not None:
        before, after = ({k: v for k, v in before.items() if after[k] != v},
                         {k: v for k, v in after.items() if before[k] != v})
        if not after:
            return rule
    if not creating:
        rule.version = Rule.objects.get(pk=rule.pk).version + 1
    rule.save()
    RuleVersion.objects.create(rule=rule, version=rule.version, policy=snapshot(rule, RULE_FIELDS),
                               saved_by_label=actor.label)
    audit_record(actor=actor, verb="rule.created" if creating else "rule.updated", target=rule,
                 before=before, after={**after, "version": rule.version})
    return rule

