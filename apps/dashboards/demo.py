"""Demo part of the steering dashboard: a few risks of the register and training sessions. Idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from apps.dashboards.models import RiskAction, RiskEntry, TrainingSession

# (risk, nature, impact, probability, [(action, owner, due in days, status)], reviewed days ago, interval)
RISKS = [
    ("Saturation des radiologues de la ligne mutualisée (nuits de week-end)", "human", 4, 3,
     [("Seuil de débordement vers le prestataire privé", "ARS – DOS", -15, "done"),
      ("Suivi mensuel de la charge par garde", "Coordination médicale", 30, "in_progress")], 120, 90),
    ("Coupure du lien réseau d'un site requérant", "technical", 3, 2,
     [("Double adduction réseau", "DSI GHT", 90, "planned"),
      ("Procédure dégradée (transfert CD + téléphone)", "Cadres des urgences", -5, "planned")], 30, 180),
    ("Substitution scanner / échographie non justifiée", "clinical", 3, 3,
     [("Revue trimestrielle des indicateurs CT vs échographie par site", "Coordination médicale", 60,
       "planned")], 60, 90),
    ("Convention inter-établissements expirée", "legal", 2, 2,
     [("Alerte 90 jours avant échéance", "ARS – juridique", 20, "in_progress")], 10, 365),
]
TRAINING = [(-40, "emergency_physician", 8, "vierzon"), (-35, "radiographer", 5, "vierzon"),
            (-20, "radiologist", 12, "tours"), (-10, "emergency_physician", 6, "blois")]


def load(spec: dict[str, Any], ctx: Any) -> None:
    today = timezone.localdate()  # the region's date (Europe/Paris), not the machine's
    for risk, nature, impact, probability, actions, reviewed_days_ago, interval in RISKS:
        entry, created = RiskEntry.objects.get_or_create(region=ctx.region, risk=risk, defaults={
            "nature": nature, "impact": impact, "probability": probability,
            "last_review": today - dt.timedelta(days=reviewed_days_ago), "review_interval_days": interval})
        ctx.count("risks", created)
        for action, owner, due_in, status in actions:
            RiskAction.objects.get_or_create(risk=entry, action=action, defaults={
                "owner": owner, "due_date": today + dt.timedelta(days=due_in), "status": status,
                "done_on": today + dt.timedelta(days=due_in) if status == "done" else None})
    for days, profile, people, key in TRAINING:
        est = ctx.establishments.get(key)
        _, created = TrainingSession.objects.get_or_create(
            region=ctx.region, profile=profile, establishment=est, topic="Prise en main de la plateforme PDS",
            defaults={"date": today + dt.timedelta(days=days), "people_trained": people})
        ctx.count("training_sessions", created)
