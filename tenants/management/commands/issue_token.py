from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tenants import services
from tenants.models import ApiToken, Membership


class Command(BaseCommand):
    help = "Issue an API token for a tenant member and print its secret (shown once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--permissions", default="", help="comma-separated; default: the member's role allows")
        parser.add_argument("--expires-in", default=None)
        parser.add_argument("--reuse", action="store_true",
                            help="print nothing new when an active token with this name exists")
        parser.add_argument("--quiet", action="store_true", help="print only the secret")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        membership = Membership.objects.filter(user=user).select_related("tenant").first() if user else None
        if membership is None:
            raise CommandError(f"{options['username']!r} is not a member of any tenant (see create_tenant)")
        if options["reuse"]:
            existing = ApiToken.objects.filter(user=user, name=options["name"], revoked_at__isnull=True).first()
            if existing is not None and existing.status == "active":
                self.stdout.write(f"Token {existing.token_id} ({existing.prefix}…) already exists; "
                                  "its secret was shown when it was issued.")
                return
        permissions = [p for p in options["permissions"].split(",") if p] or sorted(
            p for p in membership.permissions if p != "admin:*")
        try:
            issued = services.issue_token(tenant=membership.tenant, creator=user, name=options["name"],
                                          permissions=permissions, expires_in=options["expires_in"])
        except services.ServiceError as error:
            raise CommandError(error.message) from None
        if options["quiet"]:
            self.stdout.write(issued.secret)
            return
        self.stdout.write(f"Token {issued.token.token_id} for {user.username} @ {membership.tenant.slug}, "
                          f"expires {issued.token.expires_at:%Y-%m-%d}.")
        self.stdout.write(f"Secret (shown once): {issued.secret}")
