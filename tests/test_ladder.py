"""The policy ladder is a pure function: plain inputs, a table of expectations."""

import pytest

from enforcement.ladder import RulePolicy, next_rung, recommend, validate_overrides

PLAIN = RulePolicy(code="secrets-in-events")
ACT_FIRST = RulePolicy(code="security-abuse", act_first=True)
RESEARCH = RulePolicy(code="security-research", auto_action=False)


@pytest.mark.parametrize(
    "severity, strikes, expected",
    [
        ("low", 0, "warning"),
        ("medium", 0, "warning"),
        ("high", 0, "throttle"),
        ("critical", 0, "suspend"),
        ("low", 1, "throttle"),
        ("medium", 2, "suspend"),
        ("high", 1, "suspend"),
        ("high", 2, "terminate"),
        ("critical", 1, "terminate"),
        ("critical", 5, "terminate"),  # the top rung is the top
        ("low", 3, "terminate"),
    ],
)
def test_ladder_table(severity, strikes, expected):
    rec = recommend(rule=PLAIN, severity=severity, strikes=strikes, window_days=90, source_trusted=False)
    assert rec.kind == expected
    assert not rec.act_first


def test_reason_is_human_readable():
    rec = recommend(rule=PLAIN, severity="high", strikes=1, window_days=90, source_trusted=False)
    assert rec.reason == "high severity, 1 strike in 90 days -> suspend"
    rec = recommend(rule=PLAIN, severity="low", strikes=0, window_days=30, source_trusted=False)
    assert rec.reason == "low severity, 0 strikes in 30 days -> warning"


def test_rule_overrides_pick_the_first_rung():
    strict = RulePolicy(code="childrens-data", first_rung_overrides={"medium": "suspend"})
    assert recommend(rule=strict, severity="medium", strikes=0, window_days=90, source_trusted=False).kind == "suspend"
    assert recommend(rule=strict, severity="low", strikes=0, window_days=90, source_trusted=False).kind == "warning"


@pytest.mark.parametrize(
    "severity, trusted, act_first",
    [("critical", True, True), ("critical", False, False), ("high", True, False)],
)
def test_act_first_needs_critical_act_first_rule_and_trusted_source(severity, trusted, act_first):
    rec = recommend(rule=ACT_FIRST, severity=severity, strikes=0, window_days=90, source_trusted=trusted)
    assert rec.act_first is act_first
    assert ("act first" in rec.reason) is act_first


def test_plain_rule_is_never_act_first():
    rec = recommend(rule=PLAIN, severity="critical", strikes=0, window_days=90, source_trusted=True)
    assert rec.kind == "suspend" and not rec.act_first


def test_security_research_is_never_actioned_automatically():
    for severity in ("low", "critical"):
        rec = recommend(rule=RESEARCH, severity=severity, strikes=3, window_days=90, source_trusted=True)
        assert rec.kind is None
        assert not rec.act_first
        assert "never actioned automatically" in rec.reason


def test_next_rung_and_override_validation():
    assert next_rung("warning") == "throttle"
    assert next_rung("terminate") == "terminate"
    assert validate_overrides({"high": "suspend"}) == []
    assert len(validate_overrides({"severe": "ban"})) == 2


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError):
        recommend(rule=PLAIN, severity="extreme", strikes=0, window_days=90, source_trusted=False)
