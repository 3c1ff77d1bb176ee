"""Supply (public schema): providers, their GPU nodes, and the GPU reservation ledger."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from django.db import models
from django.utils import timezone

from .traits import GpuTraits, Offer, ProviderProfile


class Provider(models.Model):
    KINDS = [("hyperscaler", "Hyperscaler"), ("neocloud", "Neocloud"), ("marketplace", "Marketplace"),
             ("on-premise", "On-premise")]

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=KINDS, default="neocloud")
    fluidos_domain = models.CharField(max_length=200, help_text="FLUIDOS NodeIdentity domain")
    fluidos_node_id = models.CharField(max_length=100, blank=True, help_text="FLUIDOS NodeIdentity nodeID")
    fluidos_ip = models.CharField(max_length=100, blank=True, help_text="NodeIdentity ip:port")
    region = models.CharField(max_length=50, help_text="e.g. eu-west-1, us-east-1, ap-northeast-1")
    zone = models.CharField(max_length=50, blank=True)
    location_group = models.CharField(max_length=20, blank=True, help_text="EU, US, Asia, Japan, …")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    bandwidth_gbps = models.FloatField(null=True, blank=True)
    offers_spot = models.BooleanField(default=False, help_text="offers preemptible/spot capacity")
    renewable_share = models.FloatField(null=True, blank=True, help_text="0–1")
    pue = models.FloatField(null=True, blank=True, help_text="power usage effectiveness")
    carbon_intensity = models.FloatField(null=True, blank=True, help_text="grid g CO2/kWh")
    energy_rating = models.CharField(max_length=1, blank=True, help_text="A–F")
    green_certified = models.BooleanField(default=False)
    certifications = models.JSONField(default=list, blank=True, help_text='e.g. ["ISO27001", "SOC2", "GDPR"]')
    currency = models.CharField(max_length=3, default="EUR")
    active = models.BooleanField(default=True)
    kubeconfig_secret_ref = models.CharField(max_length=200, blank=True,
                                             help_text="namespace/name of a Secret holding the provider kubeconfig")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def profile(self) -> ProviderProfile:
        return ProviderProfile(
            name=self.name, region=self.region, zone=self.zone, location_group=self.location_group,
            latency_ms=self.latency_ms, bandwidth_gbps=self.bandwidth_gbps, offers_spot=self.offers_spot,
            renewable_share=self.renewable_share, pue=self.pue, carbon_intensity=self.carbon_intensity,
            energy_rating=self.energy_rating, green_certified=self.green_certified,
            certifications=tuple(self.certifications or ()), kind=self.kind,
        )

    def owner_identity(self) -> dict:
        return {"domain": self.fluidos_domain, "nodeID": self.fluidos_node_id or self.fluidos_domain,
                "ip": self.fluidos_ip or "0.0.0.0:30000"}


# Typed trait columns mirrored from GpuTraits, so the admin and /resources can filter in SQL.
TRAIT_COLUMNS = [
    "vendor", "model", "count", "memory_per_gpu", "cores_per_gpu", "clock_speed", "compute_capability",
    "architecture", "tier", "interconnect", "interconnect_bandwidth_gbps", "topology", "multi_gpu_efficiency",
    "fp32_tflops", "sharing_strategy", "shared", "dedicated", "interruptible", "multi_instance", "training_score",
    "inference_score", "hpc_score", "graphics_score", "hourly_rate", "currency", "region", "zone", "preemptible",
    "network_bandwidth_gbps", "network_latency_ms", "network_tier",
]


class GpuNode(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=253, help_text="Kubernetes node name")
    annotations = models.JSONField(default=dict, blank=True, help_text="raw node annotations (FLUIDOS keys)")
    labels = models.JSONField(default=dict, blank=True)
    available = models.BooleanField(default=True, help_text="advertised to the federation")
    cpu = models.CharField(max_length=20, default="32", help_text="allocatable CPU (quantity)")
    memory = models.CharField(max_length=20, default="256Gi", help_text="allocatable memory (quantity)")
    pods = models.PositiveIntegerField(default=110)

    vendor = models.CharField(max_length=20, blank=True)
    model = models.CharField(max_length=60, blank=True, db_index=True)
    count = models.PositiveIntegerField(default=0, help_text="GPUs on the node")
    memory_per_gpu = models.BigIntegerField(default=0, help_text="bytes")
    cores_per_gpu = models.PositiveIntegerField(default=0)
    clock_speed = models.BigIntegerField(default=0, help_text="Hz")
    compute_capability = models.CharField(max_length=10, blank=True)
    architecture = models.CharField(max_length=30, blank=True)
    tier = models.CharField(max_length=20, blank=True, db_index=True)
    interconnect = models.CharField(max_length=30, blank=True)
    interconnect_bandwidth_gbps = models.FloatField(default=0)
    topology = models.CharField(max_length=30, blank=True)
    multi_gpu_efficiency = models.FloatField(null=True, blank=True)
    fp32_tflops = models.FloatField(null=True, blank=True)
    sharing_strategy = models.CharField(max_length=20, blank=True)
    shared = models.BooleanField(default=False)
    dedicated = models.BooleanField(default=False)
    interruptible = models.BooleanField(default=False)
    multi_instance = models.BooleanField(default=False)
    training_score = models.FloatField(null=True, blank=True)
    inference_score = models.FloatField(null=True, blank=True)
    hpc_score = models.FloatField(null=True, blank=True)
    graphics_score = models.FloatField(null=True, blank=True)
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True,
                                      help_text="per GPU-hour")
    currency = models.CharField(max_length=3, default="EUR")
    region = models.CharField(max_length=50, blank=True)
    zone = models.CharField(max_length=50, blank=True)
    preemptible = models.BooleanField(default=False)
    network_bandwidth_gbps = models.FloatField(null=True, blank=True)
    network_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    network_tier = models.CharField(max_length=20, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider__name", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="unique_node_per_provider")]
        indexes = [models.Index(fields=["available", "model"])]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.name}" if self.provider_id else self.name

    # --- traits -------------------------------------------------------------------------------

    def traits(self) -> GpuTraits:
        values = {name: getattr(self, name) for name in TRAIT_COLUMNS}
        values["region"] = self.region or (self.provider.region if self.provider_id else "")
        values["zone"] = self.zone or (self.provider.zone if self.provider_id else "")
        values["provider"] = self.provider.name if self.provider_id else ""
        for name in ("interconnect_bandwidth_gbps",):
            values[name] = values[name] or 0.0
        return GpuTraits(**values)

    def apply_traits(self, traits: GpuTraits) -> None:
        for name in TRAIT_COLUMNS:
            value = getattr(traits, name)
            if value is None and name in {"interconnect_bandwidth_gbps"}:
                value = 0
            setattr(self, name, value)

    def set_annotations(self, annotations: dict, labels: dict | None = None):
        """Parse annotations into the typed columns. Returns the parse result (errors, warnings)."""
        from .annotations import parse_annotations

        result = parse_annotations(annotations, labels if labels is not None else self.labels)
        self.annotations = dict(annotations)
        if labels is not None:
            self.labels = dict(labels)
        if result.traits is not None and not result.errors:
            self.apply_traits(result.traits)
        return result

    @property
    def flavor_name(self) -> str:
        seed = f"{self.provider.fluidos_domain}/{self.name}" if self.provider_id else self.name
        return f"{self.provider.fluidos_domain}-k8slice-{hashlib.sha256(seed.encode()).hexdigest()[:4]}"

    def as_flavor(self) -> dict:
        from .flavor import flavor_manifest

        return flavor_manifest(
            self.traits(), name=self.flavor_name, provider_id=self.provider.fluidos_node_id or self.provider.fluidos_domain,
            owner=self.provider.owner_identity(), cpu=self.cpu, memory=self.memory, pods=str(self.pods),
            available=self.available and self.provider.active,
        )

    def as_offer(self, free_gpus: int, power_watts: int | None = None) -> Offer:
        from flare_portal.units import parse_quantity

        try:
            cpu = int(parse_quantity(self.cpu) * 1000)
            memory = int(parse_quantity(self.memory))
        except ValueError:
            cpu = memory = None
        return Offer(
            node_id=str(self.pk), node_name=self.name, flavor_name=self.flavor_name, traits=self.traits(),
            provider=self.provider.profile(), free_gpus=free_gpus, total_gpus=self.count, power_watts=power_watts,
            cpu_millicores=cpu, memory_bytes=memory,
        )


class GpuReservation(models.Model):
    """The ledger: GPUs of a node held for an intent (tenant schema + intent id) at an agreed price."""

    STATE_HELD = "held"          # locked before the federation reservation completes
    STATE_ACTIVE = "active"      # contract in force, cost accrues
    STATE_RELEASED = "released"
    STATES = [(STATE_HELD, "Held"), (STATE_ACTIVE, "Active"), (STATE_RELEASED, "Released")]
    LIVE_STATES = (STATE_HELD, STATE_ACTIVE)

    tenant_schema = models.CharField(max_length=63)
    intent_id = models.CharField(max_length=40)
    node = models.ForeignKey(GpuNode, on_delete=models.PROTECT, related_name="reservations")
    gpus = models.PositiveIntegerField()
    price_per_gpu_hour = models.DecimalField(max_digits=10, decimal_places=4, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="EUR")
    state = models.CharField(max_length=10, choices=STATES, default=STATE_HELD)
    attempt = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    expected_release_at = models.DateTimeField(null=True, blank=True,
                                               help_text="batch work: start + timeout; none for services")
    release_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["tenant_schema", "intent_id"]),
            models.Index(fields=["node", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.gpus}× {self.node} for {self.tenant_schema}/{self.intent_id} ({self.state})"


class QueueEntry(models.Model):
    """The one central queue across tenants: intents that fit the federation but not its free capacity.

    Woken when GPUs are released: priority (higher first), then arrival order, with backfill of
    smaller intents that cannot delay the head.
    """

    tenant_schema = models.CharField(max_length=63)
    intent_id = models.CharField(max_length=40)
    priority = models.IntegerField(default=0)
    gpus = models.PositiveIntegerField()
    enqueued_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    estimated_start_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "enqueued_at", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant_schema", "intent_id"], name="one_queue_entry")]

    def __str__(self) -> str:
        return f"{self.tenant_schema}/{self.intent_id} ({self.gpus} GPUs)"


class FederationObject(models.Model):
    """FLUIDOS/Liqo/Kubernetes objects as the simulated federation keeps them (same kinds, names,
    phases and messages as a real consumer cluster), so every worker process sees one federation."""

    api_version = models.CharField(max_length=80)
    kind = models.CharField(max_length=60)
    namespace = models.CharField(max_length=63, blank=True)
    name = models.CharField(max_length=253)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    owner_references = models.JSONField(default=list, blank=True)
    spec = models.JSONField(default=dict, blank=True)
    status = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["kind", "namespace", "name"], name="unique_federation_object")]
        indexes = [models.Index(fields=["kind", "namespace"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def manifest(self) -> dict:
        metadata = {"name": self.name, "labels": self.labels,
                    "creationTimestamp": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if self.namespace:
            metadata["namespace"] = self.namespace
        if self.annotations:
            metadata["annotations"] = self.annotations
        if self.owner_references:
            metadata["ownerReferences"] = self.owner_references
        body = {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata, "spec": self.spec}
        if self.status:
            body["status"] = self.status
        return body
