"""Demo part of the steering dashboard: a few risks of the register and training sessions. Idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from apps.dashboards.models import RiskEntry, TrainingSession

RISKS = [
    ("Saturation des radiologues de la ligne mutualisée (nuits de week-end)", "human", 4, 3,
     "Seuil de débordement vers le prestataire privé ; suivi mensuel de la charge par garde", "ARS – DOS",
     120, 90),
    ("Coupure du lien réseau d'un site requérant", "technical", 3, 2,
     "Double adduction réseau, procédure dégradée (transfert CD + téléphone)", "DSI GHT", 30, 180),
    ("Substitution scanner / échographie non justifiée", "clinical", 3, 3,
     "Revue trimestrielle des indicateurs CT vs échographie par site", "Coordination médicale", 60, 90),
    ("Convention inter-établissements expirée", "legal", 2, 2, "Alerte 90 jours avant échéance", "ARS – juridique",
     10, 365),
]
TRAINING = [(-40, "emergency_physician", 8, "vierzon"), (-35, "radiographer", 5, "vierzon"),
            (-20, "radiologist", 12, "tours"), (-10, "emergency_physician", 6, "blois")]


def load(spec: dict[str, Any], ctx: Any) -> None:
    today = dt.date.today()
    for risk, nature, impact, probability, action, owner, reviewed_days_ago, interval in RISKS:
        _, created = RiskEntry.objects.get_or_create(region=ctx.region, risk=risk, defaults={
            "nature": nature, "impact": impact, "probability": probability, "preventive_action": action,
            "owner": owner, "due_date": today + dt.timedelta(days=60),
            "last_review": today - dt.timedelta(days=reviewed_days_ago), "review_interval_days": interval})
        ctx.count("risks", created)
    for days, profile, people, key in TRAINING:
        est = ctx.establishments.get(key)
        _, created = TrainingSession.objects.get_or_create(
            region=ctx.region, profile=profile, establishment=est, topic="Prise en main de la plateforme PDS",
            defaults={"date": today + dt.timedelta(days=days), "people_trained": people})
        ctx.count("training_sessions", created)
