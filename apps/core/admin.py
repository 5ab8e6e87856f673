from django.contrib import admin

from apps.core.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "last_seen")
    list_filter = ("kind",)
