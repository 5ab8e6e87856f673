from django.core.management.base import BaseCommand

from apps.regions.demo import demo_region_load


class Command(BaseCommand):
    help = "Load the demo region (idempotent: running it twice changes nothing)."

    def handle(self, *args: object, **options: object) -> None:
        ctx = demo_region_load()
        created = ", ".join(f"{k}: {v}" for k, v in sorted(ctx.created.items())) or "nothing new"
        self.stdout.write(self.style.SUCCESS(f"Demo region '{ctx.region.name}' ready ({created})."))
