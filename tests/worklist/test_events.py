"""The case timeline is the integrations' outbox: subscribers are called in the recording transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.api.services import webhook_event_publish
from apps.worklist import events
from apps.worklist.models import CaseEvent, CaseEventKind
from apps.worklist.services import case_event_add
from tests.factories.worklist import make_case


def test_webhooks_subscribe_to_the_timeline_in_their_app_config() -> None:
    assert webhook_event_publish in events.case_event_subscribers()


@pytest.mark.django_db
def test_a_subscriber_sees_the_event_inside_the_transaction_and_its_failure_rolls_it_back(
        demo, monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case(demo)
    seen: list[tuple[int, bool]] = []

    def subscriber(*, event: CaseEvent) -> None:
        seen.append((event.pk, transaction.get_connection().in_atomic_block))
        if event.message == "boom":
            raise RuntimeError("subscriber failed")

    monkeypatch.setattr(events, "_subscribers", [*events._subscribers, subscriber])
    with transaction.atomic():
        event = case_event_add(case=case, kind=CaseEventKind.OPENED, message="hello")
    assert seen == [(event.pk, True)]
    before = CaseEvent.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        case_event_add(case=case, kind=CaseEventKind.OPENED, message="boom")
    assert CaseEvent.objects.count() == before
