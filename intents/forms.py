"""Portal forms. They only shape input; validation of intents, tokens, members and webhooks is the
services' job, and their errors are mapped back onto these fields."""

from __future__ import annotations

import copy
import json
from datetime import timedelta

from django import forms
from django.utils import timezone

from tenants.models import PERMISSIONS, Membership

from .models import WEBHOOK_EVENT_KINDS

OBJECTIVES = [
    ("Performance_Maximization", "Performance"),
    ("Cost_Minimization", "Cost"),
    ("Latency_Minimization", "Latency"),
    ("Energy_Efficiency", "Energy"),
    ("Balanced_Optimization", "Balanced"),
]
LOCATIONS = ["EU", "US", "Asia", "Canada", "Australia", "Brazil", "India", "Japan", "Singapore", "any"]
WORKLOAD_TYPES = [("service", "Service (long-running)"), ("batch", "Batch job")]

# The editor's templates: published examples (intents/examples) under the names users look for.
TEMPLATES = [
    ("llm_inference", "LLM inference service"),
    ("distributed_training", "Training job (distributed)"),
    ("jupyter_service", "Notebook (Jupyter)"),
    ("video_batch", "Video processing batch"),
    ("spark_etl", "Data pipeline (Spark)"),
    ("communication_aware_training", "Communication-aware training"),
]

# Form field → JSON path in the request body (`{"intent": {...}}`), as the error envelope names it.
FIELD_PATHS = {
    "name": "intent.workload.name",
    "workload_type": "intent.workload.type",
    "image": "intent.workload.image",
    "commands": "intent.workload.commands",
    "gpu_model": "intent.workload.resources.gpu.model",
    "gpu_count": "intent.workload.resources.gpu.count",
    "gpu_memory": "intent.workload.resources.gpu.memory_min",
    "objective": "intent.objective",
    "location": "intent.constraints.location",
    "max_hourly_cost": "intent.constraints.max_hourly_cost",
}
# Spellings the API accepts for the same field (API.md aliases).
_ALIASES = {"intent.workload.resources.gpu.memory": "gpu_memory"}


def template_document(name: str, now=None) -> dict:
    """A published example, ready to submit: deadlines in the past are moved 30 days ahead."""
    from .examples import load_example

    doc = load_example(name)
    constraints = doc.get("intent", {}).get("constraints") or {}
    deadline = constraints.get("deadline")
    if isinstance(deadline, str):
        from django.utils.dateparse import parse_datetime

        parsed = parse_datetime(deadline)
        now = now or timezone.now()
        if parsed is not None and parsed <= now:
            constraints["deadline"] = (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return doc


def canonical_path(path: str | None) -> str:
    """Envelope field paths come as `intent.workload…`, or short (`gpu.count`, `constraints.location`)."""
    path = (path or "").strip()
    if not path or path.startswith("intent.") or path == "intent":
        return path
    if path.startswith("gpu."):
        return "intent.workload.resources." + path
    if path.startswith(("workload.", "constraints.", "sla.", "objective")):
        return "intent." + path
    return path


def field_for_path(path: str | None) -> str | None:
    """The form field an error path belongs to, or None (then it is shown at the JSON editor)."""
    path = canonical_path(path)
    if not path:
        return None
    if path in _ALIASES:
        return _ALIASES[path]
    for field, field_path in FIELD_PATHS.items():
        if path == field_path or path.startswith(field_path + "[") or path.startswith(field_path + "."):
            return field
    return None


class IntentForm(forms.Form):
    template = forms.ChoiceField(choices=[("", "— start from a template —"), *TEMPLATES], required=False)
    name = forms.CharField(required=False, max_length=63, help_text="DNS label, unique among your live intents",
                           widget=forms.TextInput(attrs={"placeholder": "my-inference", "autocomplete": "off",
                                                         "spellcheck": "false"}))
    workload_type = forms.ChoiceField(label="Type", choices=[("", "—"), *WORKLOAD_TYPES], required=False)
    image = forms.CharField(required=False, max_length=300,
                            widget=forms.TextInput(attrs={"placeholder": "pytorch/pytorch:2.4.0-cuda12.1",
                                                          "spellcheck": "false"}))
    commands = forms.CharField(required=False, help_text="One shell command line per line",
                               widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}))
    gpu_model = forms.CharField(label="GPU model", required=False, max_length=60,
                                widget=forms.TextInput(attrs={"list": "gpu-models", "placeholder": "nvidia-a100",
                                                              "autocomplete": "off"}))
    gpu_count = forms.IntegerField(label="GPUs", required=False, min_value=1, max_value=4096,
                                   help_text="per replica / task")
    gpu_memory = forms.CharField(label="GPU memory (min)", required=False, max_length=20,
                                 widget=forms.TextInput(attrs={"placeholder": "40Gi"}))
    objective = forms.ChoiceField(choices=[("", "—"), *OBJECTIVES], required=False)
    location = forms.ChoiceField(choices=[("", "—"), *[(loc, loc) for loc in LOCATIONS]], required=False)
    max_hourly_cost = forms.CharField(label="Max hourly cost", required=False, max_length=30,
                                      widget=forms.TextInput(attrs={"placeholder": "10 EUR"}))
    document = forms.CharField(label="Intent document (JSON)", required=False,
                               widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false",
                                                            "class": "code-editor"}))

    def clean_document(self):
        raw = (self.cleaned_data.get("document") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError as error:
            line = getattr(error, "lineno", None)
            where = f" (line {line}, column {error.colno})" if line else ""
            raise forms.ValidationError(f"Not valid JSON{where}: {getattr(error, 'msg', error)}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The document must be a JSON object: {\"intent\": {…}}.")
        return value

    def build_document(self) -> dict:
        """The JSON editor's document with every filled-in field laid over it."""
        data = self.cleaned_data
        body = copy.deepcopy(data.get("document") or {})
        if "intent" not in body and ({"workload", "objective"} & set(body)):
            body = {"intent": body}  # a bare intent object is accepted too
        body.setdefault("intent", {})
        intent = body["intent"]
        if not isinstance(intent, dict):
            return body  # the service names the problem
        workload = _obj(intent, "workload")
        if data.get("name"):
            workload["name"] = data["name"].strip()
        if data.get("workload_type"):
            workload["type"] = data["workload_type"]
        if data.get("image"):
            workload["image"] = data["image"].strip()
        if data.get("commands"):
            workload["commands"] = [line.strip() for line in data["commands"].splitlines() if line.strip()]
        gpu_fields = {k: data.get(k) for k in ("gpu_model", "gpu_count", "gpu_memory")}
        if any(v not in (None, "") for v in gpu_fields.values()):
            gpu = _obj(_obj(workload, "resources"), "gpu")
            if gpu_fields["gpu_model"]:
                gpu["model"] = gpu_fields["gpu_model"].strip()
            if gpu_fields["gpu_count"] is not None:
                gpu["count"] = gpu_fields["gpu_count"]
            if gpu_fields["gpu_memory"]:
                gpu.pop("memory", None)  # the alias would clash with memory_min
                gpu["memory_min"] = gpu_fields["gpu_memory"].strip()
        if data.get("objective"):
            intent["objective"] = data["objective"]
        if data.get("location") or data.get("max_hourly_cost"):
            constraints = _obj(intent, "constraints")
            if data.get("location"):
                constraints["location"] = data["location"]
            if data.get("max_hourly_cost"):
                constraints["max_hourly_cost"] = data["max_hourly_cost"].strip()
        return body

    def add_envelope_errors(self, details: list[dict]) -> list[dict]:
        """Attach each `details[]` item to its field; returns those that belong to no field."""
        leftovers = []
        for item in details or []:
            field = field_for_path(item.get("field"))
            message = item.get("message") or "invalid"
            if field:
                self.add_error(field, message)
            elif item.get("field"):
                self.add_error("document", f"{canonical_path(item['field'])}: {message}")
            else:
                leftovers.append(item)
        return leftovers


def _obj(parent: dict, key: str) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


EXPIRY_CHOICES = [("12h", "12 hours"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("1y", "1 year")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "laptop", "autocomplete": "off"}))
    expires_in = forms.ChoiceField(label="Expires in", choices=EXPIRY_CHOICES, initial="90d")
    permissions = forms.MultipleChoiceField(choices=[(p, p) for p in PERMISSIONS],
                                            widget=forms.CheckboxSelectMultiple,
                                            initial=["intents:read", "intents:write"])

    def __init__(self, *args, grantable=None, **kwargs):
        super().__init__(*args, **kwargs)
        if grantable is not None:
            self.fields["permissions"].choices = [(p, p) for p in PERMISSIONS if p in grantable]


class MemberForm(forms.Form):
    username = forms.RegexField(regex=r"^[\w.@+-]+$", max_length=150,
                                error_messages={"invalid": "Letters, digits and @/./+/-/_ only."},
                                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Membership.ROLES, initial=Membership.ROLE_MEMBER)
    password = forms.CharField(required=False, min_length=8, strip=False,
                               help_text="For a new user; leave empty to generate one (shown once)",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


class WebhookForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https",
                         widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/flare"}))
    event_kinds = forms.MultipleChoiceField(label="Events", required=False,
                                            choices=[(k, k) for k in WEBHOOK_EVENT_KINDS],
                                            widget=forms.CheckboxSelectMultiple,
                                            help_text="None selected = every event")


class ResourceFilterForm(forms.Form):
    model = forms.CharField(required=False, widget=forms.TextInput(attrs={"list": "gpu-models",
                                                                          "placeholder": "any"}))
    location = forms.ChoiceField(required=False, choices=[("", "any"), *[(loc, loc) for loc in LOCATIONS[:-1]]])
    min_memory = forms.CharField(label="Min memory", required=False, max_length=20,
                                 widget=forms.TextInput(attrs={"placeholder": "24Gi"}))
    provider = forms.CharField(required=False, max_length=100)
    tier = forms.ChoiceField(required=False, choices=[("", "any"), *[(t, t) for t in
                                                                   ("premium", "standard", "gaming", "inference",
                                                                    "budget")]])
    max_price = forms.DecimalField(label="Max price / GPU·h", required=False, min_value=0, max_digits=10, decimal_places=2)
    available_only = forms.BooleanField(label="Free now", required=False)
