from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from providers import services
from providers.demo_data import generate_federation


class Command(BaseCommand):
    help = "Seed (or refresh) the realistic demo federation: providers across EU, US and Asia with GPU nodes."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--nodes", type=int, default=None, help="scale up to exactly N nodes (benchmarks)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        federation = generate_federation(seed=options["seed"], nodes=options["nodes"])
        total = sum(len(p.nodes) for p in federation)
        bar = tqdm(total=total, unit="node", desc="seeding", disable=options["no_progress"] or total < 200,
                   file=self.stderr._out)
        report = services.seed_federation(federation, progress=bar.update)
        bar.close()
        if report.errors:
            raise CommandError("some nodes were refused:\n" + "\n".join(report.errors[:20]))
        self.stdout.write(f"Federation: {report.providers} providers, {report.nodes_created} nodes created, "
                          f"{report.nodes_updated} updated, {report.nodes_unchanged} unchanged.")
