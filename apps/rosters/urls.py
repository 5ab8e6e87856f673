from django.urls import path

from apps.rosters import views

app_name = "rosters"
urlpatterns: list = [
    path("coverage/", views.coverage, name="coverage"),
    path("calendar/", views.calendar, name="calendar"),
    path("ical/<int:user_id>/<str:token>.ics", views.ical_feed, name="ical"),
    path("ical/mine/", views.my_ical, name="my_ical"),
    path("interventions/", views.interventions, name="interventions"),
]
