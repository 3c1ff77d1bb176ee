from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from providers.models import Provider
from providers.node_sync import NodeSyncError, client_from_kubeconfig, sync_nodes


class Command(BaseCommand):
    help = ("Import a provider's GPU nodes from its cluster: nodes labelled node-role.fluidos.eu/resources=true, "
            "their GPU annotations (or GPU-operator labels) → the inventory.")

    def add_arguments(self, parser):
        parser.add_argument("provider", help="provider name (or its FLUIDOS domain)")
        parser.add_argument("--kubeconfig", required=True, help="kubeconfig of the provider cluster")
        parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
        parser.add_argument("--strict", action="store_true", help="exit with an error if any node was skipped")

    def handle(self, *args, **options):
        key = options["provider"]
        provider = Provider.objects.filter(Q(name=key) | Q(fluidos_domain=key)).order_by("pk").first()
        if provider is None:
            raise CommandError(f"no provider named {key!r} (create it in the admin first)")
        try:
            api_client = client_from_kubeconfig(options["kubeconfig"], options["context"])
        except Exception as error:  # noqa: BLE001 - the kubernetes config loader raises many kinds
            raise CommandError(f"cannot load {options['kubeconfig']}: {error}") from error
        try:
            report = sync_nodes(provider, api_client)
        except NodeSyncError as error:
            raise CommandError(error.message) from error
        finally:
            api_client.close()
        for line in report.errors:
            self.stderr.write(f"skipped {line}")
        self.stdout.write(report.summary())
        if options["strict"] and report.errors:
            raise CommandError(f"{len(report.errors)} node(s) skipped")
