from django.core.management.base import BaseCommand, CommandError

from tenants import services


class Command(BaseCommand):
    help = "Create a tenant (its PostgreSQL schema) and its first admin user. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug")
        parser.add_argument("--admin", required=True, help="username of the tenant's first admin")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="admin password (random and printed when omitted for a new user)")
        parser.add_argument("--max-gpus", type=int, dest="max_concurrent_gpus")
        parser.add_argument("--max-hourly-spend", dest="max_hourly_spend")
        parser.add_argument("--max-active-intents", type=int, dest="max_active_intents")
        parser.add_argument("--monthly-budget", dest="monthly_budget")

    def handle(self, *args, **options):
        quotas = {k: options[k] for k in ("max_concurrent_gpus", "max_hourly_spend", "max_active_intents",
                                          "monthly_budget") if options.get(k) is not None}
        try:
            setup = services.create_tenant(
                name=options["name"], slug=options["slug"], admin_username=options["admin"],
                admin_email=options["email"], admin_password=options["password"], quotas=quotas,
            )
        except services.ServiceError as error:
            raise CommandError(error.message) from None
        verb = "Created" if setup.created_tenant else "Found"
        self.stdout.write(f"{verb} tenant {setup.tenant.slug} (schema {setup.tenant.schema_name}).")
        if setup.created_user:
            self.stdout.write(f"Created admin {setup.admin.username} with password: {setup.password}")
        else:
            self.stdout.write(f"Admin {setup.admin.username} already exists.")
