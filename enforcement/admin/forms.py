"""Forms behind the console's buttons. They only parse input; the services decide."""

import uuid

from django import forms
from django.forms.fields import InvalidJSONInput

from enforcement.evidence import PROBLEMS, evidence_problem
from enforcement.ladder import validate_overrides
from enforcement.models import ActionKind, Appeal, Rule, ServiceToken, Severity
from enforcement.services import SIMULATION_DEFAULT_DAYS, SIMULATION_MAX_DAYS
from lib.safe_json import UnsafeJSON, parse_json_safely


class ProposeForm(forms.Form):
    """Propose an action; with no kind, the ladder's recommendation."""

    kind = forms.ChoiceField(choices=[("", "Ladder's recommendation"), *ActionKind.choices], required=False)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    keys = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    rate_limit_per_minute = forms.IntegerField(required=False, min_value=1)
    ip_rate_limit_per_minute = forms.IntegerField(required=False, min_value=1)
    expires_at = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    remediation_deadline = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )

    def __init__(self, *args, key_prefixes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["keys"].choices = [(prefix, prefix) for prefix in key_prefixes]


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=2000)


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)


class ResolveForm(forms.Form):
    resolution = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=5000)


class AssignForm(forms.Form):
    """``me``, empty (unassign) or a user id."""

    assignee = forms.CharField(required=False)


class AppealSubmitForm(forms.Form):
    message = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=10000)


class AppealDecideForm(forms.Form):
    outcome = forms.ChoiceField(choices=[(Appeal.Status.UPHELD, "Uphold"), (Appeal.Status.OVERTURNED, "Overturn")])
    note = forms.CharField(required=False, max_length=5000)


class ReportViolationForm(forms.Form):
    """A violation reported by hand. ``external_id`` is fixed when the form is shown, so a double
    submission records one violation, not two."""

    account = forms.CharField(label="Account public id", max_length=64)
    api_key = forms.CharField(label="API key prefix", required=False, max_length=16,
                              help_text="Optional, e.g. sk_live_4eC39HqL. Never paste a full key.")
    rule = forms.ModelChoiceField(queryset=Rule.objects.filter(is_active=True).order_by("code"), to_field_name="code")
    severity = forms.ChoiceField(choices=[("", "The rule's default"), *Severity.choices], required=False)
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    evidence = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                               help_text="Optional JSON object. Redacted before it is stored.")
    external_id = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("external_id", uuid.uuid4().hex)

    def clean_evidence(self):
        raw = self.cleaned_data["evidence"].strip()
        if not raw:
            return {}
        try:
            value = parse_json_safely(raw)  # the API's limits: nesting, finite numbers, storable text
        except UnsafeJSON as exc:
            raise forms.ValidationError(exc.message) from None
        problem = evidence_problem(value)
        if problem is not None:
            message = PROBLEMS[problem]
            raise forms.ValidationError(f"Evidence {message[0].lower()}{message[1:]}")
        return value


class SafeJSONFormField(forms.JSONField):
    """Django's JSON form field with the API's limits (nesting, finite numbers, storable text): a hostile
    value is a form error, never a RecursionError."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip():
            try:
                parse_json_safely(value)
            except UnsafeJSON as exc:
                raise forms.ValidationError(exc.message) from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        if isinstance(data, str):
            try:
                parse_json_safely(data)
            except (UnsafeJSON, ValueError):
                return InvalidJSONInput(data)  # shown back as typed, with the error; never parsed again
        return super().bound_data(data, initial)


class RuleAdminForm(forms.ModelForm):
    # Set by the admin for "Preview the effect": the form is checked in full, then shown again with the preview
    # instead of being saved. The admin saves a form only when it is valid, so a preview never is.
    previewing = False

    class Meta:
        model = Rule
        fields = [
            "code", "title", "clause", "description", "default_severity", "ladder_overrides", "strike_window_days",
            "act_first", "auto_action", "publishable_key_exposure_is_violation", "dsa_category", "dsa_illegal",
            "dsa_legal_ground", "is_active",
        ]
        field_classes = {"ladder_overrides": SafeJSONFormField}

    def clean_ladder_overrides(self):
        overrides = self.cleaned_data.get("ladder_overrides")
        if overrides in (None, ""):
            return {}
        if not isinstance(overrides, dict):
            raise forms.ValidationError('Must be a JSON object such as {"high": "suspend"}.')
        problems = validate_overrides(overrides)
        if problems:
            raise forms.ValidationError(problems)
        return overrides

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("dsa_illegal") and not (cleaned.get("dsa_legal_ground") or "").strip():
            self.add_error("dsa_legal_ground", "Name the law: statements of illegal content must give their ground.")
        return cleaned

    def is_valid(self) -> bool:
        return super().is_valid() and not self.previewing


class PolicyPreviewForm(forms.Form):
    """How far back "Preview the effect" replays the rule's decisions."""

    preview_days = forms.IntegerField(min_value=1, max_value=SIMULATION_MAX_DAYS, initial=SIMULATION_DEFAULT_DAYS)


class ServiceTokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(choices=ServiceToken.Scope.choices, widget=forms.CheckboxSelectMultiple)
    trusted = forms.BooleanField(
        required=False, help_text="Its reports count as a trusted source: act-first rules suspend at once."
    )
    expires_at = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
