"""Portal pages (Django templates + small plain-JS files in static/portal/).

Every page is behind login and scoped to the session user's tenant (`request.tenant`, resolved by
`tenants.middleware` from the membership; the connection is already in its schema). An account
without a tenant (a provider administrator) gets a clear page, never another tenant's data.
Every change goes through a service, and the services write the audit log.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from functools import wraps

import yaml
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from flare_portal.api.errors import FlareAPIException
from flare_portal.units import format_money, parse_bytes
from providers import ledger
from providers.models import GpuNode, GpuReservation
from tenants import services as tenant_services
from tenants.models import ApiToken, AuditEntry, Membership, Tenant

from . import forms, webhooks
from .api.serializers import accrued_costs, intent_status
from .lifecycle import FORWARD, P, api_phase
from .models import TERMINAL_PHASES, Intent, IntentEvent, Webhook, WebhookAttempt, WebhookDelivery

LIVE_PHASES = [p for p in P.values if p not in TERMINAL_PHASES]
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
           "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "1h"
RING = 150.8  # circumference of the dashboard's gauge ring (r = 24)


# --- access ----------------------------------------------------------------------------------------


def membership_of(user) -> Membership | None:
    try:
        return user.membership
    except Membership.DoesNotExist:
        return None


def has_tenant(request) -> bool:
    """The portal serves the session user's own tenant only. The middleware would let a bearer
    header pick another schema; a portal page must never mix one user's role with another
    tenant's data, so that case fails closed like an account without a tenant."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.is_public or not request.user.is_authenticated:
        return False
    membership = membership_of(request.user)
    return membership is not None and membership.tenant_id == tenant.pk


def page(request, template: str, context: dict | None = None, status: int = 200):
    membership = membership_of(request.user) if request.user.is_authenticated else None
    base = {
        "tenant": request.tenant if has_tenant(request) else None,
        "membership": membership,
        "is_tenant_admin": bool(membership and membership.is_admin and has_tenant(request)),
        "can_see_audit": bool((membership and membership.is_admin and has_tenant(request))
                              or request.user.is_staff),
        "nav": getattr(request, "portal_nav", ""),
    }
    base.update(context or {})
    return render(request, template, base, status=status)


def portal_view(nav: str = "", *, admin: bool = False, tenant: bool = True):
    """login required; a tenant required (unless tenant=False); a tenant admin role when admin=True."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            request.portal_nav = nav
            if tenant and not has_tenant(request):
                return page(request, "portal/no_tenant.html", status=403)
            if admin and not (membership_of(request.user) and membership_of(request.user).is_admin):
                return page(request, "portal/forbidden.html",
                            {"reason": "Only your tenant's administrators can open this page."}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def not_found(request, what: str):
    return page(request, "portal/not_found.html", {"what": what}, status=404)


def _intent_or_none(intent_id: str) -> Intent | None:
    # The connection is in the user's schema: another tenant's id simply does not exist here.
    return Intent.objects.filter(intent_id=intent_id).first()


# --- dashboard -------------------------------------------------------------------------------------


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _reservation_rows(schema: str, start: datetime, end: datetime):
    return (GpuReservation.objects.filter(tenant_schema=schema, created_at__lt=end)
            .filter(Q(released_at__isnull=True) | Q(released_at__gt=start))
            .order_by("-created_at")  # beyond the cap, the oldest history is what gets dropped
            .values_list("created_at", "activated_at", "released_at", "gpus", "price_per_gpu_hour")[:20000])


def spend_between(rows, start: datetime, end: datetime) -> Decimal:
    """Money accrued inside [start, end]: active time × price per GPU-hour × GPUs (the ledger's rule)."""
    total = Decimal(0)
    for _created, activated, released, gpus, price in rows:
        if activated is None:
            continue
        a, b = max(activated, start), min(released or end, end)
        if b > a:
            total += Decimal((b - a).total_seconds()) / ledger.HOUR * price * gpus
    return total


def usage_series(rows, start: datetime, end: datetime, samples: int = 90) -> list[dict]:
    """GPUs held, hourly spend rate and money spent since `start`, as a step series.

    `rows`: (created_at, activated_at, released_at, gpus, price_per_gpu_hour) of the tenant's
    reservations. GPUs count from the hold (created) to the release; spend from activation (the
    contract) to the release. Each point holds its values until the next one; `spent` is exact at
    every point because the rate only changes at points.
    """
    gpus, rate = 0, Decimal(0)
    changes: list[tuple[datetime, int, Decimal]] = []
    for created, activated, released, count, price in rows:
        for since, d_gpus, d_rate in ((created, count, Decimal(0)),
                                      (activated, 0, Decimal(count) * price)):
            if since is None or since >= end or (released is not None and released <= start):
                continue
            if released is not None and released <= since:
                continue
            if since <= start:
                gpus += d_gpus
                rate += d_rate
            else:
                changes.append((since, d_gpus, d_rate))
            if released is not None and released <= end:
                changes.append((released, -d_gpus, -d_rate))
    step = (end - start) / samples
    times = sorted({start, end, *(start + step * i for i in range(1, samples)), *(t for t, _, _ in changes)})
    changes.sort(key=lambda c: c[0])
    points, spent, index, previous = [], Decimal(0), 0, start
    for moment in times:
        spent += rate * Decimal((moment - previous).total_seconds()) / ledger.HOUR
        while index < len(changes) and changes[index][0] <= moment:
            gpus += changes[index][1]
            rate += changes[index][2]
            index += 1
        previous = moment
        points.append({"t": _iso(moment), "gpus": gpus, "hourly": round(float(rate), 4),
                       "spent": round(float(spent), 4)})
    return points


def tenant_gauges(tenant: Tenant, now: datetime) -> list[dict]:
    schema = tenant.schema_name
    usage = ledger.tenant_usage(schema)
    active = Intent.objects.filter(phase__in=LIVE_PHASES).count()
    start = month_start(now)
    month = spend_between(_reservation_rows(schema, start, now), start, now)
    currency = tenant.currency

    def gauge(key, label, used, limit, text):
        used_f, limit_f = float(used), float(limit)
        ratio = min(1.0, used_f / limit_f) if limit_f > 0 else (1.0 if used_f else 0.0)
        return {"key": key, "label": label, "used": round(used_f, 4), "limit": round(limit_f, 4), "text": text,
                "ratio": round(ratio, 4), "percent": round(used_f / limit_f * 100) if limit_f > 0 else None,
                "offset": round(RING * (1 - ratio), 2)}

    return [
        gauge("gpus", "GPUs in use", usage["gpus"], tenant.max_concurrent_gpus,
              f"{usage['gpus']} of {tenant.max_concurrent_gpus}"),
        gauge("hourly", "Hourly spend", usage["hourly_spend"], tenant.max_hourly_spend,
              f"{format_money(usage['hourly_spend'], currency)} of {format_money(tenant.max_hourly_spend, currency)}"),
        gauge("intents", "Active intents", active, tenant.max_active_intents,
              f"{active} of {tenant.max_active_intents}"),
        gauge("budget", "Spent this month", month, tenant.monthly_budget,
              f"{format_money(month, currency)} of {format_money(tenant.monthly_budget, currency)}"),
    ]


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


@portal_view("dashboard")
@require_GET
def dashboard(request):
    live = list(Intent.objects.filter(phase__in=LIVE_PHASES).order_by("-created_at", "-id")[:200])
    recent = list(Intent.objects.exclude(phase__in=LIVE_PHASES).order_by("-finished_at", "-id")[:20])
    costs = accrued_costs(live + recent)
    rows = [intent_status(i, costs.get(i.intent_id)) for i in live + recent]
    return page(request, "portal/dashboard.html", {
        "rows": rows,
        "gauges": tenant_gauges(request.tenant, timezone.now()),
        "windows": list(WINDOWS),
        "default_window": DEFAULT_WINDOW,
        "counts": {s: n for s, n in Intent.objects.values_list("status").annotate(n=Count("id"))},
    })


@portal_view()
@require_GET
def dashboard_usage(request):
    """JSON for the dashboard: gauges, the usage time series, event markers, live costs."""
    window = request.GET.get("window", DEFAULT_WINDOW)
    if window not in WINDOWS:
        return JsonResponse({"error": f"window must be one of {', '.join(WINDOWS)}"}, status=400)
    tenant = request.tenant
    now = timezone.now()
    start = now - WINDOWS[window]
    schema = tenant.schema_name
    points = usage_series(list(_reservation_rows(schema, start, now)), start, now)
    markers = [
        {"t": _iso(e.time), "intent_id": e.intent.intent_id, "name": e.intent.name, "phase": e.phase,
         "reason": e.reason, "type": e.type}
        for e in IntentEvent.objects.select_related("intent")
        .filter(time__gte=start, kind="transition",
                phase__in=[P.RUNNING, P.SUCCEEDED, P.FAILED, P.CANCELLED, P.QUEUED])
        .order_by("-time")[:100]
    ]
    live = list(Intent.objects.filter(phase__in=LIVE_PHASES).only(
        "intent_id", "current_cost", "agreed_cost_per_hour", "estimated_cost_per_hour", "status"))
    costs = accrued_costs(live, now=now)
    return JsonResponse({
        "window": window, "start": _iso(start), "end": _iso(now), "currency": tenant.currency,
        "points": points, "markers": markers,
        "totals": {"spent": points[-1]["spent"] if points else 0.0,
                   "peak_gpus": max((p["gpus"] for p in points), default=0)},
        "gauges": tenant_gauges(tenant, now),
        "live_costs": {i.intent_id: round(float(costs.get(i.intent_id, i.current_cost or 0)), 4) for i in live},
        "time": _iso(now),
    })


# --- submit ----------------------------------------------------------------------------------------


def _known_models() -> list[str]:
    from providers.gpu_catalog import CATALOG

    advertised = set(GpuNode.objects.values_list("model", flat=True).distinct())
    return sorted(advertised | set(CATALOG)) + ["any"]


@portal_view("submit")
@require_http_methods(["GET", "POST"])
def intent_submit(request):
    templates = {name: forms.template_document(name) for name, _ in forms.TEMPLATES}
    problem = None
    if request.method == "POST":
        form = forms.IntentForm(request.POST)
        if form.is_valid():
            document = form.build_document()
            from . import services

            try:
                result = services.submit_intent(request.tenant, request.user, document)
            except FlareAPIException as error:
                leftovers = form.add_envelope_errors(error.details)
                problem = {"code": error.error_code, "message": error.message, "status": error.status_code,
                           "suggestions": error.suggestions, "details": leftovers}
            else:
                intent = result.intent
                verb = "queued" if result.queued else "submitted"
                messages.success(request, f"Intent {intent.name} {verb}: {intent.message}")
                for warning in result.warnings:
                    messages.warning(request, warning)
                return redirect("portal:intent-detail", intent_id=intent.intent_id)
    else:
        chosen = request.GET.get("template")
        initial = {}
        if chosen in templates:
            import json

            initial = {"template": chosen, "document": json.dumps(templates[chosen], indent=2)}
        form = forms.IntentForm(initial=initial)
    return page(request, "portal/submit.html", {
        "form": form, "problem": problem, "templates": templates, "template_names": forms.TEMPLATES,
        "gpu_models": _known_models(), "field_paths": forms.FIELD_PATHS,
    }, status=400 if problem or (request.method == "POST" and form.errors) else 200)


# --- intent detail ---------------------------------------------------------------------------------

STEPPER = [P.SUBMITTED, P.DISCOVERING, P.RESERVING, P.PEERING, P.OFFLOADING, P.DEPLOYING, P.RUNNING,
           P.SUCCEEDED]


def stepper(intent: Intent) -> list[dict]:
    """The happy path with the intent's position on it (failures and cancels mark where it stopped)."""
    current = api_phase(intent)
    reached = FORWARD.index(current) if current in FORWARD else 0
    stopped = intent.phase in (P.FAILED, P.CANCELLED) or intent.phase == P.CANCELLING
    if stopped:
        reached = FORWARD.index(intent.previous_phase) if intent.previous_phase in FORWARD else 0
        if intent.phase in (P.FAILED, P.CANCELLED):
            last = (IntentEvent.objects.filter(intent=intent, kind="transition")
                    .exclude(from_phase__in=["", P.CANCELLING, P.QUEUED]).order_by("-time", "-id")
                    .values_list("from_phase", flat=True).first())
            reached = FORWARD.index(last) if last in FORWARD else reached
    steps = []
    for index, phase in enumerate(STEPPER):
        state = "done" if index < reached else ("current" if index == reached else "todo")
        if index == reached and intent.phase == P.SUCCEEDED:
            state = "done"
        if index == reached and stopped:
            state = "stopped" if intent.phase == P.FAILED else "cancelled"
        steps.append({"phase": phase, "state": state})
    return steps


def solver_yaml(intent: Intent) -> str:
    from .reconcile import intent_ref

    return yaml.safe_dump(intent_ref(intent).solver_manifest, sort_keys=False)


def placement_view(intent: Intent) -> dict | None:
    placed = intent.placement or {}
    chosen = placed.get("chosen")
    if not chosen:
        return None
    chosen_cost = chosen.get("hourly_cost_number")
    alternatives = []
    for alt in placed.get("alternatives") or []:
        diff = None
        if chosen_cost is not None and alt.get("hourly_cost_number") is not None:
            diff = alt["hourly_cost_number"] - chosen_cost
        alternatives.append({**alt, "cost_diff": diff})
    return {"chosen": chosen, "alternatives": alternatives, "candidates": placed.get("candidates"),
            "fallback": placed.get("fallback")}


@portal_view("dashboard")
@require_GET
def intent_detail(request, intent_id: str):
    intent = _intent_or_none(intent_id)
    if intent is None:
        return not_found(request, f"intent {intent_id}")
    cost = accrued_costs([intent]).get(intent.intent_id)
    status = intent_status(intent, cost, detail=True)
    events = list(IntentEvent.objects.filter(intent=intent).order_by("time", "id"))
    try:
        solver = solver_yaml(intent)
    except Exception as error:  # noqa: BLE001 - a broken document must not hide the rest of the page
        solver = f"# The Solver could not be generated: {error}"
    import json

    return page(request, "portal/intent_detail.html", {
        "intent": intent, "status": status, "events": events, "solver_yaml": solver,
        "steps": stepper(intent), "placement": placement_view(intent),
        "document_json": json.dumps(intent.document, indent=2),
        "can_cancel": not intent.is_terminal and intent.phase != P.CANCELLING,
    })


@portal_view("dashboard")
@require_POST
def intent_cancel(request, intent_id: str):
    intent = _intent_or_none(intent_id)
    if intent is None:
        return not_found(request, f"intent {intent_id}")
    from . import services

    try:
        intent = services.cancel_intent(request.tenant, request.user, intent)
    except FlareAPIException as error:
        messages.error(request, error.message)
    else:
        if intent.phase == P.CANCELLED:
            messages.success(request, f"Intent {intent.name} cancelled; everything it held was released.")
        elif intent.phase == P.CANCELLING:
            messages.info(request, f"Cancelling {intent.name}: releasing its resources.")
        else:
            messages.info(request, f"Intent {intent.name} had already finished ({intent.phase}).")
    return redirect("portal:intent-detail", intent_id=intent.intent_id)


# --- resources -------------------------------------------------------------------------------------


@portal_view("resources")
@require_GET
def resources(request):
    from providers.api.views import available_gpus

    form = forms.ResourceFilterForm(request.GET or None)
    rows, params = [], {}
    if form.is_bound and not form.is_valid():
        rows = []
    else:
        data = form.cleaned_data if form.is_bound else {}
        params = {k: v for k, v in data.items() if v not in (None, "", False)}
        if params.get("min_memory"):
            try:
                params["min_memory_bytes"] = parse_bytes(params["min_memory"])
            except ValueError as error:
                form.add_error("min_memory", str(error))
                params = None
        rows = available_gpus(params) if params is not None else []
    by_model: dict[str, dict] = {}
    for row in rows:
        entry = by_model.setdefault(row["model"], {"model": row["model"], "free": 0, "total": 0, "min_price": None,
                                                   "currency": row["currency"], "regions": set()})
        entry["free"] += row["count"]
        entry["total"] += row["total"]
        entry["regions"].add(row["location"])
        price = row["cost_per_hour_value"]
        if price is not None and (entry["min_price"] is None or price < entry["min_price"]):
            entry["min_price"] = price
    summary = sorted(by_model.values(), key=lambda e: (-e["free"], e["model"]))
    for entry in summary:
        entry["regions"] = sorted(entry["regions"])
    return page(request, "portal/resources.html", {
        "form": form, "rows": rows, "summary": summary, "gpu_models": _known_models(),
        "providers": sorted(set(GpuNode.objects.values_list("provider__name", flat=True))),
    })


# --- tokens ----------------------------------------------------------------------------------------


def _can_manage_tokens(user) -> bool:
    membership = membership_of(user)
    return bool(membership and "tokens:manage" in membership.permissions)


@portal_view("tokens")
@require_http_methods(["GET", "POST"])
def tokens(request):
    membership = membership_of(request.user)
    grantable = membership.permissions if membership else frozenset()
    if request.user.is_superuser:
        grantable = tenant_services.ALL_CONCRETE_PERMISSIONS | {"admin:*"}
    issued = None
    if request.method == "POST":
        form = forms.TokenForm(request.POST, grantable=grantable)
        if form.is_valid():
            try:
                issued = tenant_services.issue_token(
                    tenant=request.tenant, creator=request.user, name=form.cleaned_data["name"],
                    permissions=form.cleaned_data["permissions"], expires_in=form.cleaned_data["expires_in"])
            except tenant_services.ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                form = forms.TokenForm(grantable=grantable)
    else:
        form = forms.TokenForm(grantable=grantable)
    listing = ApiToken.objects.filter(tenant=request.tenant).select_related("user")
    manage = _can_manage_tokens(request.user)
    if not manage:
        listing = listing.filter(user=request.user)
    return page(request, "portal/tokens.html", {
        "form": form, "issued": issued, "tokens": listing.order_by("-created_at", "token_id")[:500],
        "manage": manage,
    }, status=201 if issued else (400 if request.method == "POST" else 200))


@portal_view("tokens")
@require_POST
def token_revoke(request, token_id: str):
    token = ApiToken.objects.filter(tenant=request.tenant, token_id=token_id).first()
    if token is None or (token.user_id != request.user.pk and not _can_manage_tokens(request.user)):
        return not_found(request, f"token {token_id}")
    tenant_services.revoke_token(token=token, actor=request.user)
    messages.success(request, f"Token {token.token_id} ({token.name}) revoked.")
    return redirect("portal:token-list")


# --- members (tenant admins) -----------------------------------------------------------------------


@portal_view("members", admin=True)
@require_http_methods(["GET", "POST"])
def members(request):
    created_password = None
    if request.method == "POST":
        form = forms.MemberForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            User = get_user_model()
            existing = User.objects.filter(username=data["username"]).first()
            is_new = existing is None
            password = data.get("password") or (secrets.token_urlsafe(12) if is_new else None)
            try:
                tenant_services.add_member(tenant=request.tenant, username=data["username"], role=data["role"],
                                           password=password if is_new else None, email=data.get("email") or "",
                                           actor=request.user)
            except tenant_services.ServiceError as error:
                form.add_error(error.field if error.field in form.fields else "username", error.message)
            else:
                if is_new and not data.get("password"):
                    created_password = (data["username"], password)
                messages.success(request, f"{data['username']} is now a{'n' if data['role'] == 'admin' else ''} "
                                          f"{data['role']} of {request.tenant.name}.")
                if not created_password:
                    return redirect("portal:member-list")
                form = forms.MemberForm()
    else:
        form = forms.MemberForm()
    rows = (Membership.objects.filter(tenant=request.tenant).select_related("user")
            .order_by("-role", "user__username"))
    return page(request, "portal/members.html", {"form": form, "members": rows,
                                                 "created_password": created_password},
                status=400 if request.method == "POST" and form.errors else 200)


@portal_view("members", admin=True)
@require_http_methods(["POST"])
def member_remove(request, username: str):
    try:
        tenant_services.remove_member(tenant=request.tenant, username=username, actor=request.user)
    except tenant_services.ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{username} was removed from {request.tenant.name}; their tokens are revoked.")
    return redirect("portal:member-list")


# --- webhooks (tenant admins) ----------------------------------------------------------------------


@portal_view("webhooks", admin=True)
@require_http_methods(["GET", "POST"])
def webhook_list(request):
    created = None
    if request.method == "POST":
        form = forms.WebhookForm(request.POST)
        if form.is_valid():
            try:
                webhook, secret = webhooks.create_webhook(tenant=request.tenant, actor=request.user,
                                                          url=form.cleaned_data["url"],
                                                          event_kinds=form.cleaned_data["event_kinds"])
            except tenant_services.ServiceError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                created = (webhook, secret)
                form = forms.WebhookForm()
    else:
        form = forms.WebhookForm()
    hooks = (Webhook.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.STATE_SUCCEEDED)),
        failed=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.STATE_FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__state=WebhookDelivery.STATE_PENDING)),
        last_delivery=Max("deliveries__created_at")).order_by("-created_at", "-id"))
    return page(request, "portal/webhooks.html", {
        "form": form, "webhooks": hooks, "created": created,
        "allow_private": webhooks.allow_private(), "max_attempts": webhooks.max_attempts(),
        "backoff": [round(webhooks.backoff_seconds(n)) for n in range(1, webhooks.max_attempts())],
    }, status=201 if created else (400 if request.method == "POST" else 200))


@portal_view("webhooks", admin=True)
@require_GET
def webhook_detail(request, webhook_id: int):
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None:
        return not_found(request, f"webhook {webhook_id}")
    deliveries = Paginator(WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id"), 25)
    current = deliveries.get_page(request.GET.get("page"))
    attempts: dict[int, list] = {}
    for attempt in WebhookAttempt.objects.filter(delivery__in=list(current.object_list)).order_by("number"):
        attempts.setdefault(attempt.delivery_id, []).append(attempt)
    rows = [{"delivery": d, "attempts": attempts.get(d.pk, [])} for d in current.object_list]
    return page(request, "portal/webhook_detail.html", {"webhook": webhook, "rows": rows, "page_obj": current})


@portal_view("webhooks", admin=True)
@require_POST
def webhook_delete(request, webhook_id: int):
    webhook = Webhook.objects.filter(pk=webhook_id).first()
    if webhook is None:
        return not_found(request, f"webhook {webhook_id}")
    webhooks.delete_webhook(tenant=request.tenant, actor=request.user, webhook=webhook)
    messages.success(request, f"Webhook {webhook.url} deleted.")
    return redirect("portal:webhook-list")


# --- audit log -------------------------------------------------------------------------------------


@portal_view("audit", tenant=False)
@require_GET
def audit(request):
    membership = membership_of(request.user)
    tenant_admin = bool(membership and membership.is_admin and has_tenant(request))
    if not (tenant_admin or request.user.is_staff):
        return page(request, "portal/forbidden.html",
                    {"reason": "The audit log is open to tenant administrators and provider staff."}, status=403)
    entries = AuditEntry.objects.select_related("tenant")
    staff_view = request.user.is_staff
    if not staff_view:
        entries = entries.filter(tenant=request.tenant)
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    actor = request.GET.get("actor", "").strip()
    if actor:
        entries = entries.filter(actor_label__icontains=actor)
    tenant_slug = request.GET.get("tenant", "").strip() if staff_view else ""
    if tenant_slug:
        entries = entries.filter(tenant__slug=tenant_slug)
    actions = (AuditEntry.objects.filter(**({} if staff_view else {"tenant": request.tenant}))
               .values_list("action", flat=True).distinct().order_by("action"))
    current = Paginator(entries.order_by("-time", "-id"), 50).get_page(request.GET.get("page"))
    return page(request, "portal/audit.html", {
        "page_obj": current, "entries": current.object_list, "staff_view": staff_view, "actions": list(actions),
        "filters": {"action": action, "actor": actor, "tenant": tenant_slug},
        "tenants": list(Tenant.objects.exclude(schema_name="public").values_list("slug", flat=True))
        if staff_view else [],
    })
