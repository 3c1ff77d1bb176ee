import os

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.utils import timezone

from tenants import services
from tenants.models import ApiToken


class Command(BaseCommand):
    help = "Prepare the one-command demo: provider admin, demo tenant and a fresh printed API token."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="demo")
        parser.add_argument("--password", default="demo")
        parser.add_argument("--no-sample-intents", action="store_true",
                            help="do not submit the published example intents to an empty demo tenant")

    def handle(self, *args, **options):
        services.ensure_public_tenant()
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@flare.local", options["password"])
        setup = services.create_tenant(name="Demo Lab", slug=options["tenant"], admin_username="demo",
                                       admin_password=options["password"])
        if "seed_federation" in get_commands():
            call_command("seed_federation", stdout=self.stdout)
        # A fresh token per run: the old demo tokens are revoked, the new secret printed once.
        for token in ApiToken.objects.filter(user=setup.admin, name="demo", revoked_at__isnull=True):
            services.revoke_token(token=token, actor=setup.admin)
        issued = services.issue_token(tenant=setup.tenant, creator=setup.admin, name="demo",
                                      permissions=["admin:*"], expires_in="30d")
        if not options["no_sample_intents"]:
            self.submit_samples(setup.tenant, setup.admin)
        base = f"http://127.0.0.1:{os.environ.get('FLARE_PORT', '8000')}"
        line = "-" * 78
        self.stdout.write(line)
        self.stdout.write(f"Portal:   {base}/   user demo / {options['password']} (tenant {setup.tenant.slug})")
        self.stdout.write(f"Admin:    {base}/admin/   user admin / {options['password']} (provider admin)")
        self.stdout.write(f"Token:    {issued.secret}")
        self.stdout.write(f"Try:      curl -H 'Authorization: Bearer {issued.secret}' {base}/api/v1/auth/verify")
        self.stdout.write(f"Issued:   {timezone.now():%Y-%m-%d %H:%M:%S} UTC, expires in 30 days")
        self.stdout.write(line)

    def submit_samples(self, tenant, user):
        """Three published examples, so the dashboard shows intents moving as soon as the worker runs."""
        from datetime import timedelta

        from django.db import connection
        from django_tenants.utils import schema_context

        from flare_portal.api.errors import FlareAPIException
        from intents.examples import load_example
        from intents.models import Intent
        from intents.services import submit_intent

        with schema_context(tenant.schema_name):
            if Intent.objects.exists():
                return
            for name in ("llm_inference", "jupyter_service", "video_batch"):
                doc = load_example(name)
                constraints = doc["intent"].get("constraints") or {}
                if "deadline" in constraints:  # the published deadlines lie in the past
                    constraints["deadline"] = (timezone.now() + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
                try:
                    result = submit_intent(tenant, user, doc)
                except FlareAPIException as refused:
                    self.stdout.write(f"Sample {name} refused: {refused.message}")
                    continue
                self.stdout.write(f"Submitted sample intent {result.intent.intent_id} ({name}): {result.intent.status}")
        connection.set_schema_to_public()
