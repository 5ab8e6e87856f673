"""Thin Celery tasks of the worklist: the priors from the site PACS (apps.worklist.priors), a study's metadata
prepared for the viewer (apps.worklist.dicom_json). Ids as arguments, compare-and-set in the services (a duplicate
message does nothing), late acknowledgement; beat re-drives what a lost message left pending."""

from __future__ import annotations

from celery import shared_task

from apps.core.context import acting_as
from apps.worklist.dicom_json import PREPARE_TASK
from apps.worklist.priors import QUERY_TASK, REDRIVE_TASK, RETRIEVE_TASK


@shared_task(name=QUERY_TASK, acks_late=True, ignore_result=True)
def priors_query_task(case_id: int) -> str:
    from apps.worklist.priors.services import priors_query_run

    with acting_as(channel="worker"):
        return priors_query_run(case_id=case_id)


@shared_task(name=RETRIEVE_TASK, acks_late=True, ignore_result=True)
def prior_retrieve_task(prior_id: int) -> str:
    from apps.worklist.priors.services import prior_retrieve_run

    with acting_as(channel="worker"):
        return prior_retrieve_run(prior_id=prior_id)


@shared_task(name=REDRIVE_TASK, acks_late=True, ignore_result=True)
def priors_redrive_task() -> dict[str, int]:
    from apps.worklist.priors.services import priors_redrive

    with acting_as(channel="worker"):
        return priors_redrive()


@shared_task(name=PREPARE_TASK, acks_late=True, ignore_result=True)
def study_metadata_prepare_task(study_id: int) -> int:
    """A complete study's DICOM JSON in the cache shared with the web processes (apps.worklist.dicom_json), at the
    lowest CPU priority: on a busy night, decisions and alerts first."""
    from apps.core.priority import at_lowest_priority
    from apps.worklist.dicom_json import study_metadata_prepare

    return at_lowest_priority(lambda: study_metadata_prepare(study_id=study_id))


BEAT_SCHEDULE = {
    "worklist-priors-redrive": {"task": REDRIVE_TASK, "schedule": 60.0, "options": {"expires": 50}},
}
