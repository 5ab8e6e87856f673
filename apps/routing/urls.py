from django.urls import path

from apps.routing import views

app_name = "routing"
urlpatterns: list = [
    path("notifications/", views.notifications, name="notifications"),
    path("notifications.json", views.notifications_json, name="notifications_json"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification_read"),
    path("console/", views.console, name="console"),
    path("console/<int:pk>/assign/", views.console_assign, name="console_assign"),
]
