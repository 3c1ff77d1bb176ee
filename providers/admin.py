"""The provider administrators' console: providers, their GPU nodes, the ledger."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from flare_portal.units import format_gi

from . import services
from .models import GpuNode, GpuReservation, Provider


def parse_mapping_text(text: str) -> dict[str, str]:
    """Annotations or labels pasted as JSON, YAML-ish `key: value` or `key=value` lines."""
    from .gpu_labels import parse_label_text

    if not (text or "").strip():
        return {}
    return parse_label_text(text)


def _reserved_subquery():
    live = GpuReservation.objects.filter(node=OuterRef("pk"), state__in=GpuReservation.LIVE_STATES)
    return Coalesce(Subquery(live.values("node").annotate(total=Sum("gpus")).values("total")[:1],
                             output_field=IntegerField()), 0)


class GpuNodeForm(forms.ModelForm):
    annotations_text = forms.CharField(
        label="Annotations", required=False, widget=forms.Textarea(attrs={"rows": 14, "cols": 90}),
        help_text="Node annotations as `key=value` lines, `key: value` YAML or JSON. FLUIDOS cluster keys "
                  "(gpu.fluidos.eu/memory-per-gpu, cost.fluidos.eu/hourly-rate, …) and the documented "
                  "alternative spellings are accepted.",
    )
    labels_text = forms.CharField(
        label="GPU-operator labels", required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 90}),
        help_text="Optional: paste the node's NVIDIA/AMD GPU-operator labels; missing GPU annotations are "
                  "derived from them (annotations you give win).",
    )

    class Meta:
        model = GpuNode
        fields = ["provider", "name", "available", "cpu", "memory", "pods"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk:
            self.fields["annotations_text"].initial = "\n".join(
                f"{k}={v}" for k, v in sorted((self.instance.annotations or {}).items()))
            self.fields["labels_text"].initial = "\n".join(
                f"{k}={v}" for k, v in sorted((self.instance.labels or {}).items()))
        self.parse_result = None

    def clean(self):
        cleaned = super().clean()
        try:
            annotations = parse_mapping_text(cleaned.get("annotations_text", ""))
            labels = parse_mapping_text(cleaned.get("labels_text", ""))
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        conversion_notes = []
        if labels:
            from .gpu_labels import labels_to_annotations

            conversion = labels_to_annotations(labels)
            for problem in conversion.errors:
                self.add_error("labels_text", problem)
            annotations = {**conversion.annotations, **annotations}
            conversion_notes = conversion.notes
        if not annotations:
            self.add_error("annotations_text", "Give the node's GPU annotations or its GPU-operator labels.")
            return cleaned
        node = self.instance
        result = node.set_annotations(annotations, labels)
        self.parse_result = result
        for error in result.errors:
            self.add_error("annotations_text", f"{error.key}: {error.message}" if error.key else error.message)
        cleaned["conversion_notes"] = conversion_notes
        return cleaned


class GpuNodeInline(admin.TabularInline):
    model = GpuNode
    extra = 0
    fields = ["name", "model", "count", "memory_display", "tier", "hourly_rate", "currency", "available"]
    readonly_fields = ["name", "model", "count", "memory_display", "tier", "hourly_rate", "currency"]
    show_change_link = True
    can_delete = False

    @admin.display(description="memory/GPU")
    def memory_display(self, node):
        return format_gi(node.memory_per_gpu) if node.memory_per_gpu else "—"

    def has_add_permission(self, request, obj=None):
        return False  # nodes are added with their annotations on the node page


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "region", "zone", "location_group", "node_count", "gpus_free", "gpus_total",
                    "latency_ms", "carbon_intensity", "renewable_share", "offers_spot", "active"]
    list_filter = ["kind", "location_group", "region", "active", "offers_spot", "green_certified"]
    search_fields = ["name", "fluidos_domain", "region"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [GpuNodeInline]
    actions = ["import_from_cluster", "deactivate", "activate"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "active", "currency"]}),
        ("FLUIDOS identity", {"fields": ["fluidos_domain", "fluidos_node_id", "fluidos_ip",
                                          "kubeconfig_secret_ref"]}),
        ("Location and network", {"fields": ["region", "zone", "location_group", "latency_ms", "bandwidth_gbps"]}),
        ("Energy", {"fields": ["renewable_share", "pue", "carbon_intensity", "energy_rating", "green_certified"]}),
        ("Offer and compliance", {"fields": ["offers_spot", "certifications"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            _nodes=Count("nodes", distinct=True),
            _total=Coalesce(Sum("nodes__count"), 0),
        )

    @admin.display(description="nodes", ordering="_nodes")
    def node_count(self, provider):
        return provider._nodes

    @admin.display(description="GPUs total", ordering="_total")
    def gpus_total(self, provider):
        return provider._total

    @admin.display(description="GPUs free")
    def gpus_free(self, provider):
        reserved = GpuReservation.objects.filter(node__provider=provider, state__in=GpuReservation.LIVE_STATES)
        used = reserved.aggregate(total=Sum("gpus"))["total"] or 0
        return provider._total - used

    @admin.action(description="Import GPU nodes from the provider cluster (kubeconfig Secret)")
    def import_from_cluster(self, request, queryset):
        from tenants.services import ServiceError

        from .node_sync import client_for_provider, sync_nodes

        for provider in queryset:
            try:
                report = sync_nodes(provider, client_for_provider(provider), actor=request.user)
            except ServiceError as error:
                self.message_user(request, f"{provider.name}: {error.message}", messages.ERROR)
                continue
            self.message_user(request, report.summary(), messages.SUCCESS if report.ok else messages.WARNING)
            for problem in report.errors[:20]:
                self.message_user(request, problem, messages.WARNING)

    @admin.action(description="Deactivate (stop advertising every node)")
    def deactivate(self, request, queryset):
        updated = services.set_provider_active(queryset, False, actor=request.user)
        self.message_user(request, f"{updated} provider(s) deactivated; running reservations are kept.")

    @admin.action(description="Activate")
    def activate(self, request, queryset):
        updated = services.set_provider_active(queryset, True, actor=request.user)
        self.message_user(request, f"{updated} provider(s) activated.")


@admin.register(GpuNode)
class GpuNodeAdmin(admin.ModelAdmin):
    form = GpuNodeForm
    list_display = ["name", "provider", "model", "count", "free_gpus", "memory_display", "tier", "region",
                    "price_display", "interruptible", "available"]
    list_filter = ["model", "tier", "region", "available", "interruptible", "shared", "vendor", "provider"]
    search_fields = ["name", "model", "provider__name", "region"]
    list_select_related = ["provider"]
    readonly_fields = ["parsed_traits", "flavor_name_display", "kubectl_command", "created_at", "updated_at"]
    actions = ["mark_unavailable", "mark_available", "show_kubectl_annotate", "push_annotations_to_nodes"]
    change_list_template = "admin/providers/gpunode/change_list.html"
    fieldsets = [
        (None, {"fields": ["provider", "name", "available", ("cpu", "memory", "pods")]}),
        ("GPU annotations", {"fields": ["annotations_text", "labels_text"]}),
        ("Parsed", {"fields": ["parsed_traits", "flavor_name_display", "kubectl_command"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_reserved=_reserved_subquery())

    @admin.display(description="free", ordering="_reserved")
    def free_gpus(self, node):
        return max(0, node.count - getattr(node, "_reserved", 0))

    @admin.display(description="memory/GPU", ordering="memory_per_gpu")
    def memory_display(self, node):
        return format_gi(node.memory_per_gpu) if node.memory_per_gpu else "—"

    @admin.display(description="price/GPU-h", ordering="hourly_rate")
    def price_display(self, node):
        return f"{node.hourly_rate:.2f} {node.currency}" if node.hourly_rate is not None else "—"

    @admin.display(description="typed traits")
    def parsed_traits(self, node):
        if not node.pk:
            return "Saved nodes show their parsed traits here."
        data = node.traits().to_dict()
        rows = [(k, v) for k, v in data.items() if v not in (None, "", False, 0, 0.0)]
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="Flavor")
    def flavor_name_display(self, node):
        return node.flavor_name if node.pk else "—"

    @admin.display(description="kubectl annotate")
    def kubectl_command(self, node):
        if not node.pk:
            return "—"
        from .annotations import kubectl_annotate_command

        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           kubectl_annotate_command(node.name, node.annotations or node.traits()))

    def save_model(self, request, obj, form, change):
        obj.save()
        services.record_audit(tenant=None, actor=request.user, action="node.update" if change else "node.create",
                              target=str(obj), data={"model": obj.model, "count": obj.count})
        for note in form.cleaned_data.get("conversion_notes") or []:
            messages.info(request, note)
        for warning in getattr(form.parse_result, "warnings", []) or []:
            messages.warning(request, str(warning))

    @admin.action(description="Mark unavailable (stop advertising)")
    def mark_unavailable(self, request, queryset):
        changed = services.set_availability(queryset, False, actor=request.user)
        self.message_user(request, f"{changed} node(s) marked unavailable; running reservations are kept.")

    @admin.action(description="Mark available")
    def mark_available(self, request, queryset):
        changed = services.set_availability(queryset, True, actor=request.user)
        self.message_user(request, f"{changed} node(s) marked available.")

    @admin.action(description="Push annotations to the nodes in the provider cluster")
    def push_annotations_to_nodes(self, request, queryset):
        from tenants.services import ServiceError

        from .node_sync import client_for_provider, push_annotations

        clients = {}
        for node in queryset.select_related("provider"):
            try:
                if node.provider_id not in clients:
                    clients[node.provider_id] = client_for_provider(node.provider)
                push_annotations(node, clients[node.provider_id])
            except ServiceError as error:
                self.message_user(request, f"{node}: {error.message}", messages.ERROR)
                continue
            services.record_audit(tenant=None, actor=request.user, action="node.push_annotations", target=str(node))
            self.message_user(request, f"{node}: annotations pushed to the cluster node.")

    @admin.action(description="Show kubectl annotate command")
    def show_kubectl_annotate(self, request, queryset):
        from .annotations import kubectl_annotate_command

        commands = [kubectl_annotate_command(node.name, node.annotations or node.traits()) for node in queryset[:50]]
        return render(request, "admin/providers/gpunode/kubectl.html",
                      {**self.admin_site.each_context(request), "title": "kubectl annotate", "commands": commands,
                       "opts": self.model._meta})

    # --- "import from GPU-operator labels" -----------------------------------------------------

    def get_urls(self):
        return [path("import-labels/", self.admin_site.admin_view(self.import_labels_view),
                     name="providers_gpunode_import_labels")] + super().get_urls()

    def import_labels_view(self, request):
        form = LabelImportForm(request.POST or None)
        preview = None
        if request.method == "POST" and form.is_valid():
            preview = form.preview
            if "save" in request.POST and not preview["errors"]:
                node, created = services.upsert_node(
                    form.cleaned_data["provider"], form.cleaned_data["node_name"], preview["annotations"],
                    form.cleaned_data["labels"], actor=request.user,
                    cpu=form.cleaned_data["cpu"], memory=form.cleaned_data["memory"], pods=form.cleaned_data["pods"],
                )
                self.message_user(request, f"{'Created' if created else 'Updated'} {node} from its labels.")
                return redirect(reverse("admin:providers_gpunode_change", args=[node.pk]))
        return render(request, "admin/providers/gpunode/import_labels.html", {
            **self.admin_site.each_context(request), "title": "Import a GPU node from GPU-operator labels",
            "form": form, "preview": preview, "opts": self.model._meta,
        })


class LabelImportForm(forms.Form):
    provider = forms.ModelChoiceField(queryset=Provider.objects.all())
    node_name = forms.CharField(max_length=253)
    labels_text = forms.CharField(label="Labels", widget=forms.Textarea(attrs={"rows": 14, "cols": 90}),
                                  help_text="`kubectl get node NAME -o json` labels, `key=value` lines or YAML.")
    cpu = forms.CharField(initial="32")
    memory = forms.CharField(initial="256Gi")
    pods = forms.IntegerField(initial=110, min_value=1)

    def clean(self):
        cleaned = super().clean()
        from .annotations import parse_annotations
        from .gpu_labels import labels_to_annotations

        try:
            labels = parse_mapping_text(cleaned.get("labels_text", ""))
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        conversion = labels_to_annotations(labels)
        result = parse_annotations(conversion.annotations, labels)
        cleaned["labels"] = labels
        errors = list(conversion.errors) + [f"{e.key}: {e.message}" for e in result.errors]
        self.preview = {
            "annotations": conversion.annotations,
            "annotations_json": json.dumps(conversion.annotations, indent=2, sort_keys=True),
            "notes": conversion.notes,
            "errors": errors,
            "traits": [(k, v) for k, v in (result.traits.to_dict().items() if result.traits else [])
                       if v not in (None, "", False, 0, 0.0)],
        }
        return cleaned


@admin.register(GpuReservation)
class GpuReservationAdmin(admin.ModelAdmin):
    list_display = ["intent_id", "tenant_schema", "node", "gpus", "price_per_gpu_hour", "currency", "state",
                    "created_at", "activated_at", "released_at"]
    list_filter = ["state", "tenant_schema"]
    search_fields = ["intent_id", "tenant_schema", "node__name"]
    list_select_related = ["node", "node__provider"]
    raw_id_fields = ["node"]
    readonly_fields = [f.name for f in GpuReservation._meta.fields]

    def has_add_permission(self, request):
        return False  # the ledger is written by reconciliation only
