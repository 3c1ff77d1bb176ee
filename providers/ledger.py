"""The GPU ledger: who holds which GPUs, at what price, since when.

Lives in the public schema because tenants compete for the same GPUs. Reserving locks the
node rows (`SELECT … FOR UPDATE`, in id order so two reservers never deadlock), so two workers
or two tenants can never book the same GPU. All-or-nothing: a gang either gets every unit or
nothing.

Cost accrues from the moment a reservation becomes active (the contract is bought) until it
is released: real reserved time × agreed price per GPU-hour × GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from .models import GpuNode, GpuReservation

HOUR = Decimal(3600)


class LedgerConflict(Exception):
    """Not enough free GPUs on a node any more (someone else got there first)."""

    def __init__(self, message: str, node_id: int | None = None):
        super().__init__(message)
        self.message = message
        self.node_id = node_id


@dataclass(frozen=True)
class Hold:
    node_id: int
    gpus: int
    price_per_gpu_hour: Decimal
    currency: str = "EUR"


def reserved_by_node(node_ids=None) -> dict[int, int]:
    rows = GpuReservation.objects.filter(state__in=GpuReservation.LIVE_STATES)
    if node_ids is not None:
        rows = rows.filter(node_id__in=list(node_ids))
    return {row["node_id"]: row["total"] for row in rows.values("node_id").annotate(total=Sum("gpus"))}


def free_by_node(nodes) -> dict[int, int]:
    """Free GPUs per node for the given GpuNode objects (one aggregate query)."""
    nodes = list(nodes)
    reserved = reserved_by_node(n.pk for n in nodes)
    return {n.pk: max(0, n.count - reserved.get(n.pk, 0)) for n in nodes}


def live_reservations(tenant_schema: str, intent_id: str):
    return GpuReservation.objects.filter(
        tenant_schema=tenant_schema, intent_id=intent_id, state__in=GpuReservation.LIVE_STATES
    ).select_related("node", "node__provider")


def reserve(tenant_schema: str, intent_id: str, holds: list[Hold], attempt: int = 1,
            expected_release_at: datetime | None = None) -> list[GpuReservation]:
    """Hold GPUs on every node of a plan, or none. Idempotent: an intent with live holds keeps them."""
    if not holds:
        raise ValueError("a reservation needs at least one hold")
    wanted: dict[int, int] = {}
    for hold in holds:
        if hold.gpus <= 0:
            raise ValueError("a hold needs at least one GPU")
        wanted[hold.node_id] = wanted.get(hold.node_id, 0) + hold.gpus
    with transaction.atomic():
        existing = list(live_reservations(tenant_schema, intent_id))
        if existing:
            return existing
        nodes = {n.pk: n for n in GpuNode.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
        reserved = reserved_by_node(wanted)
        for node_id, gpus in wanted.items():
            node = nodes.get(node_id)
            if node is None:
                raise LedgerConflict(f"node {node_id} no longer exists", node_id)
            free = node.count - reserved.get(node_id, 0)
            if not node.available:
                raise LedgerConflict(f"{node} is no longer available", node_id)
            if free < gpus:
                raise LedgerConflict(f"{node} has {max(free, 0)} free GPUs, {gpus} needed", node_id)
        return [
            GpuReservation.objects.create(
                tenant_schema=tenant_schema, intent_id=intent_id, node_id=hold.node_id, gpus=hold.gpus,
                price_per_gpu_hour=hold.price_per_gpu_hour, currency=hold.currency, attempt=attempt,
                expected_release_at=expected_release_at,
            )
            for hold in holds
        ]


def activate(tenant_schema: str, intent_id: str, when: datetime | None = None) -> int:
    return GpuReservation.objects.filter(
        tenant_schema=tenant_schema, intent_id=intent_id, state=GpuReservation.STATE_HELD
    ).update(state=GpuReservation.STATE_ACTIVE, activated_at=when or timezone.now())


def release(tenant_schema: str, intent_id: str, reason: str = "", when: datetime | None = None) -> int:
    """Release every live hold of the intent; returns the number of GPUs freed. Idempotent."""
    with transaction.atomic():
        rows = list(
            GpuReservation.objects.select_for_update()
            .filter(tenant_schema=tenant_schema, intent_id=intent_id, state__in=GpuReservation.LIVE_STATES)
        )
        freed = sum(r.gpus for r in rows)
        if rows:
            GpuReservation.objects.filter(pk__in=[r.pk for r in rows]).update(
                state=GpuReservation.STATE_RELEASED, released_at=when or timezone.now(), release_reason=reason[:200]
            )
    return freed


def accrued_cost(tenant_schema: str, intent_id: str, now: datetime | None = None) -> tuple[Decimal, str]:
    now = now or timezone.now()
    total = Decimal("0")
    currency = "EUR"
    for row in GpuReservation.objects.filter(tenant_schema=tenant_schema, intent_id=intent_id,
                                             activated_at__isnull=False):
        end = row.released_at or now
        seconds = Decimal(max(0.0, (end - row.activated_at).total_seconds()))
        total += seconds / HOUR * row.price_per_gpu_hour * row.gpus
        currency = row.currency
    return total.quantize(Decimal("0.0001")), currency


def tenant_usage(tenant_schema: str) -> dict:
    """Live GPUs and hourly spend of a tenant (for quotas)."""
    rows = GpuReservation.objects.filter(tenant_schema=tenant_schema, state__in=GpuReservation.LIVE_STATES)
    gpus = 0
    hourly = Decimal("0")
    for row in rows.only("gpus", "price_per_gpu_hour"):
        gpus += row.gpus
        hourly += row.gpus * row.price_per_gpu_hour
    return {"gpus": gpus, "hourly_spend": hourly}


def invariant_violations() -> list[str]:
    """Reserved ≤ capacity on every node. Empty when the ledger is sound."""
    reserved = reserved_by_node()
    problems = []
    for node in GpuNode.objects.filter(pk__in=reserved).select_related("provider"):
        if reserved[node.pk] > node.count:
            problems.append(f"{node}: {reserved[node.pk]} GPUs reserved of {node.count}")
    return problems


__all__ = ["Hold", "LedgerConflict", "accrued_cost", "activate", "free_by_node", "invariant_violations",
           "live_reservations", "release", "reserve", "reserved_by_node", "tenant_usage"]
