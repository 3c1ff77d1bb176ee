from __future__ import annotations

from collections import OrderedDict

from drf_spectacular.utils import extend_schema

from flare_portal.api.errors import FlareAPIException
from flare_portal.api.views import TenantGenericAPIView
from flare_portal.units import format_gi, format_money, parse_bytes
from intents import placement

from .. import ledger
from ..models import GpuNode
from .serializers import AvailableGpuSerializer, ResourceQuerySerializer


def available_gpus(params: dict) -> list[dict]:
    """Free and total GPUs per distinct offer (provider, model, memory, region, price, …), cheapest first."""
    nodes = GpuNode.objects.filter(available=True, provider__active=True, count__gt=0).select_related("provider")
    if params.get("model") and params["model"].lower() != "any":
        nodes = nodes.filter(model=placement.canonical_model(params["model"]))
    if params.get("provider"):
        nodes = nodes.filter(provider__name__iexact=params["provider"])
    if params.get("tier") and params["tier"].lower() != "any":
        nodes = nodes.filter(tier=params["tier"].lower())
    if params.get("min_memory"):
        nodes = nodes.filter(memory_per_gpu__gte=params["min_memory_bytes"])
    if params.get("max_price") is not None:
        nodes = nodes.filter(hourly_rate__lte=params["max_price"])
    nodes = list(nodes)
    location = placement.canonical_location(params.get("location")) if params.get("location") else None
    if location:
        nodes = [n for n in nodes if placement.location_matches(location, n.region or n.provider.region)]
    free = ledger.free_by_node(nodes)
    groups: OrderedDict[tuple, dict] = OrderedDict()
    for node in nodes:
        region = node.region or node.provider.region
        key = (node.provider.name, node.model, node.memory_per_gpu, region, node.hourly_rate, node.currency,
               node.tier, node.architecture, node.interconnect, node.interruptible, node.shared)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = {
                "model": node.model, "vendor": node.vendor, "count": 0, "total": 0, "nodes": 0,
                "memory": format_gi(node.memory_per_gpu), "memory_bytes": node.memory_per_gpu,
                "location": region, "location_group": node.provider.location_group,
                "cost_per_hour": format_money(node.hourly_rate, node.currency) if node.hourly_rate is not None else None,
                "cost_per_hour_value": float(node.hourly_rate) if node.hourly_rate is not None else None,
                "currency": node.currency, "provider": node.provider.name, "tier": node.tier,
                "architecture": node.architecture, "interconnect": node.interconnect,
                "interruptible": node.interruptible or node.preemptible, "shared": node.shared,
                "fp32_tflops": node.fp32_tflops,
            }
        entry["count"] += free[node.pk]
        entry["total"] += node.count
        entry["nodes"] += 1
    rows = list(groups.values())
    if params.get("available_only"):
        rows = [r for r in rows if r["count"] > 0]
    rows.sort(key=lambda r: (r["cost_per_hour_value"] is None, r["cost_per_hour_value"] or 0, r["provider"],
                             r["model"], r["location"], r["memory_bytes"]))
    return rows


class ResourceListView(TenantGenericAPIView):
    """GPUs in the federation: free now and total, per distinct offer, cheapest first."""

    required_permissions = {"GET": "resources:read"}
    serializer_class = AvailableGpuSerializer
    results_key = "available_gpus"
    queryset = GpuNode.objects.none()

    @extend_schema(summary="Available GPUs", parameters=[ResourceQuerySerializer],
                   responses={200: AvailableGpuSerializer(many=True)})
    def get(self, request):
        query = ResourceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        if params.get("min_memory"):
            try:
                params["min_memory_bytes"] = parse_bytes(params["min_memory"])
            except ValueError as error:
                raise FlareAPIException(400, "INVALID_FORMAT", f"min_memory: {error}",
                                        details=[{"field": "min_memory", "message": str(error)}]) from None
        rows = available_gpus(params)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(page)



