"""The policy ladder: what to do next, and why. Pure: no database, plain inputs."""

from dataclasses import dataclass, field

RUNGS = ("warning", "throttle", "suspend", "terminate")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_FIRST_RUNG = {"low": "warning", "medium": "warning", "high": "throttle", "critical": "suspend"}


@dataclass(frozen=True)
class RulePolicy:
    code: str
    act_first: bool = False
    auto_action: bool = True
    first_rung_overrides: dict = field(default_factory=dict)

    @classmethod
    def from_rule(cls, rule) -> "RulePolicy":
        return cls(
            code=rule.code,
            act_first=rule.act_first,
            auto_action=rule.auto_action,
            first_rung_overrides=dict(rule.ladder_overrides or {}),
        )

    def first_rung(self, severity: str) -> str:
        return self.first_rung_overrides.get(severity) or DEFAULT_FIRST_RUNG[severity]


@dataclass(frozen=True)
class Recommendation:
    kind: str | None  # None: nothing is to be done automatically
    reason: str
    act_first: bool = False

    def as_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "act_first": self.act_first}


def validate_overrides(overrides: dict) -> list[str]:
    """Problems with a rule's ladder overrides, for the admin and the migrations."""
    problems = []
    for severity, rung in (overrides or {}).items():
        if severity not in SEVERITIES:
            problems.append(f"{severity!r} is not a severity ({', '.join(SEVERITIES)}).")
        if rung not in RUNGS:
            problems.append(f"{rung!r} is not a rung ({', '.join(RUNGS)}).")
    return problems


def next_rung(kind: str) -> str:
    index = RUNGS.index(kind)
    return RUNGS[min(index + 1, len(RUNGS) - 1)]


def recommend(
    *, rule: RulePolicy, severity: str, strikes: int, window_days: int, source_trusted: bool
) -> Recommendation:
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    strike_text = f"{strikes} strike{'' if strikes == 1 else 's'} in {window_days} days"
    if not rule.auto_action:
        return Recommendation(
            kind=None,
            reason=f"{rule.code}: never actioned automatically; a person decides",
        )
    first = rule.first_rung(severity)
    rung = RUNGS[min(RUNGS.index(first) + strikes, len(RUNGS) - 1)]
    reason = f"{severity} severity, {strike_text} -> {rung}"
    act_first = severity == "critical" and rule.act_first and source_trusted
    if act_first:
        reason += " (act first: suspend now, lead review within the SLA)"
    return Recommendation(kind=rung, reason=reason, act_first=act_first)
