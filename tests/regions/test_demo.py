from django.apps import apps

from apps.regions.demo import demo_region_load


def _snapshot():
    snap = {}
    for model in apps.get_models():
        if model._meta.app_label in ("sessions", "admin"):
            continue
        snap[model._meta.label] = sorted(model.objects.values_list("pk", flat=True))
    return snap


def test_demo_region_shape(demo):
    e = demo.establishments
    kinds = [x.kind for x in e.values()]
    assert kinds.count("requesting") >= 15
    assert 3 <= kinds.count("pivot") <= 5
    assert kinds.count("provider") == 1 and kinds.count("referral") == 1 and kinds.count("us_referral") >= 1
    radiologists = [u for u in demo.users.values() if u.role == "radiologist"]
    assert any(u.subspecialties for u in radiologists)
    import datetime as dt
    over_60 = [u for u in radiologists if u.age_on(dt.date(2026, 11, 23)) >= 60]
    assert over_60 and any(u.volunteers_over_60 for u in over_60) and any(not u.volunteers_over_60 for u in over_60)


def test_demo_load_is_idempotent(demo):
    before = _snapshot()
    ctx = demo_region_load()
    assert ctx.created == {}
    assert _snapshot() == before
