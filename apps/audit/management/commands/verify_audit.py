from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail hash chain and report the first broken link."

    def handle(self, *args: object, **options: object) -> None:
        checked, broken = audit_chain_verify()
        if broken:
            raise CommandError(f"audit chain broken at entry {broken.entry_id}: {broken.reason} "
                               f"({checked} entries verified before it)")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {checked} entries verified"))
