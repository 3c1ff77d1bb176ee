"""Changes to the provider inventory: every entry point (admin, commands, sync) comes here."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction

from tenants.services import ServiceError, record_audit

from .models import GpuNode, Provider

PROVIDER_FIELDS = [
    "kind", "fluidos_domain", "fluidos_node_id", "fluidos_ip", "region", "zone", "location_group", "latency_ms",
    "bandwidth_gbps", "offers_spot", "renewable_share", "pue", "carbon_intensity", "energy_rating",
    "green_certified", "certifications", "currency",
]


class InvalidAnnotations(ServiceError):
    def __init__(self, node_name: str, errors: list):
        self.errors = errors
        lines = "; ".join(f"{e.key}: {e.message}" if getattr(e, "key", None) else str(e) for e in errors)
        super().__init__(f"node {node_name}: {lines}", code="INVALID_FORMAT")


def upsert_provider(name: str, actor=None, **attrs) -> tuple[Provider, bool]:
    values = {k: v for k, v in attrs.items() if k in PROVIDER_FIELDS}
    if "certifications" in values:
        values["certifications"] = list(values["certifications"])
    with transaction.atomic():
        provider, created = Provider.objects.update_or_create(name=name, defaults=values)
        if actor is not None:
            record_audit(tenant=None, actor=actor, action="provider.create" if created else "provider.update",
                         target=name)
    return provider, created


def build_node(provider: Provider, name: str, annotations: dict, labels: dict | None = None, *, cpu="32",
               memory="256Gi", pods=110, available=True, node: GpuNode | None = None) -> GpuNode:
    """Parse annotations into an (unsaved) node; raises InvalidAnnotations with every error."""
    node = node or GpuNode(provider=provider, name=name)
    node.provider = provider
    node.name = name
    result = node.set_annotations(annotations, labels or {})
    if result.traits is None or result.errors:
        raise InvalidAnnotations(name, result.errors)
    node.cpu, node.memory, node.pods, node.available = str(cpu), str(memory), int(pods), bool(available)
    return node


def upsert_node(provider: Provider, name: str, annotations: dict, labels: dict | None = None, actor=None,
                **capacity) -> tuple[GpuNode, bool]:
    with transaction.atomic():
        existing = GpuNode.objects.select_for_update().filter(provider=provider, name=name).first()
        node = build_node(provider, name, annotations, labels, node=existing, **capacity)
        node.save()
        if actor is not None:
            record_audit(tenant=None, actor=actor, action="node.update" if existing else "node.create",
                         target=str(node), data={"model": node.model, "count": node.count})
    return node, existing is None


def set_availability(nodes, available: bool, actor=None) -> int:
    nodes = list(nodes)
    with transaction.atomic():
        changed = GpuNode.objects.filter(pk__in=[n.pk for n in nodes]).update(available=available)
        for node in nodes:
            record_audit(tenant=None, actor=actor, action="node.available" if available else "node.unavailable",
                         target=str(node))
    return changed


def set_provider_active(providers, active: bool, actor=None) -> int:
    providers = list(providers)
    with transaction.atomic():
        changed = Provider.objects.filter(pk__in=[p.pk for p in providers]).update(active=active)
        for provider in providers:
            record_audit(tenant=None, actor=actor, action="provider.activate" if active else "provider.deactivate",
                         target=provider.name)
    return changed


def _unchanged(node: GpuNode, spec) -> bool:
    """The node already publishes exactly this (annotations, labels, capacity, availability)."""
    return (node.annotations == dict(spec.annotations) and node.labels == dict(spec.labels)
            and node.cpu == str(spec.cpu) and node.memory == str(spec.memory) and node.pods == int(spec.pods)
            and node.available == bool(spec.available))


@dataclass
class SeedReport:
    providers: int = 0
    nodes_created: int = 0
    nodes_updated: int = 0
    nodes_unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def seed_federation(federation, progress=None, batch_size: int = 500) -> SeedReport:
    """Write a generated federation (providers.demo_data) into the inventory. Idempotent."""
    report = SeedReport()
    for spec in federation:
        attrs = {k: getattr(spec, k) for k in PROVIDER_FIELDS if hasattr(spec, k)}
        provider, _ = upsert_provider(spec.name, **attrs)
        report.providers += 1
        existing = {n.name: n for n in GpuNode.objects.filter(provider=provider)}
        to_create, to_update = [], []
        for node_spec in spec.nodes:
            current = existing.get(node_spec.name)
            if current is not None and _unchanged(current, node_spec):
                report.nodes_unchanged += 1
                if progress is not None:
                    progress(1)
                continue
            try:
                node = build_node(provider, node_spec.name, node_spec.annotations, node_spec.labels,
                                  cpu=node_spec.cpu, memory=node_spec.memory, pods=node_spec.pods,
                                  available=node_spec.available, node=existing.get(node_spec.name))
            except InvalidAnnotations as error:
                report.errors.append(error.message)
                continue
            (to_update if node.pk else to_create).append(node)
            if progress is not None:
                progress(1)
        with transaction.atomic():
            GpuNode.objects.bulk_create(to_create, batch_size=batch_size)
            if to_update:
                fields = [f.name for f in GpuNode._meta.concrete_fields
                          if f.name not in {"id", "provider", "name", "created_at"}]
                GpuNode.objects.bulk_update(to_update, fields, batch_size=batch_size)
        report.nodes_created += len(to_create)
        report.nodes_updated += len(to_update)
    return report
