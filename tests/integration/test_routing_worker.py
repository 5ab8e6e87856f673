"""Routing through real Celery workers on the real Redis broker and PostgreSQL: end to end, the escalation
chain driven by celery beat, a worker killed with SIGKILL mid-task (late ack redelivery), and two workers
racing on the same cases (exactly one assignment each)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from apps.routing.models import RoutingDecision, RoutingRule
from apps.routing.queue import ROUTE_TASK
from apps.worklist.models import AssignmentState, Case, CaseEventKind
from apps.worklist.services import CaseInput, case_create
from tests.support.processes import celery_worker_cmd, running, wait_until

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL and Redis")]


@pytest.fixture
def env(process_env, tmp_path):
    from pds_platform.celery import app

    app.control.purge()  # this test's Redis db: no leftovers from an earlier run
    (tmp_path / "var").mkdir(exist_ok=True)
    return {**process_env, "CELERY_VISIBILITY_TIMEOUT": "4",
            "PDS_SMS_BACKEND": "apps.routing.notifiers.FileSmsBackend", "PDS_SMS_FILE": str(tmp_path / "sms.log")}


def _worker(env, tmp_path, name):
    log = tmp_path / f"{name}.log"
    queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.ROUTING_QUEUE}"  # as the embedded worker consumes
    return running(celery_worker_cmd("-n", f"{name}@%h", "-Q", queues), env, log,
                   ready=lambda: "ready." in log.read_text(errors="replace"), timeout=60)


def _case(demo, site="vierzon", urgency="urgent", n=0):
    data = CaseInput(patient_birth_name=f"PATIENT{n}", patient_first_names="Jean", patient_sex="M",
                     patient_birth_date=dt.date(1950, 1, 1), clinical_question="AVC ?", modality_code="CT",
                     exam="Scanner cérébral", urgency=urgency)
    case, _ = case_create(site_id=demo.establishments[site].pk, data=data,
                          requested_by_id=demo.users["urgentiste"].pk)
    return case


def _state(case_id):
    return Case.objects.filter(pk=case_id).values_list("assignment_state", flat=True).first()


def test_worker_routes_cases_end_to_end_and_escalates_by_beat(live_demo, env, tmp_path):
    with _worker(env, tmp_path, "w1"):
        case = _case(live_demo)
        wait_until(lambda: _state(case.pk) == AssignmentState.OFFERED, timeout=30, message="case assigned")
        case.refresh_from_db()
        assert case.assigned_to == live_demo.users["radiologue"]
        assert (case.assigned_at - case.requested_at) < dt.timedelta(seconds=10)
        sms = Path(env["PDS_SMS_FILE"])
        wait_until(lambda: sms.exists() and live_demo.users["radiologue"].phone in sms.read_text(), timeout=20,
                   message="SMS written")
        # Escalation driven by beat: acknowledgement delays of 0 minutes make every step due at once.
        RoutingRule.objects.update(delay_vital_minutes=0, delay_urgent_minutes=0, delay_deferred_minutes=0)
        vital = _case(live_demo, urgency="vital", n=1)
        beat_log = tmp_path / "beat.log"
        beat = [sys.executable, "-m", "celery", "-A", "pds_platform", "beat", "-l", "INFO",
                "-s", str(tmp_path / "beat-schedule")]
        with running(beat, env, beat_log, ready=lambda: "beat: Starting" in beat_log.read_text(errors="replace")):
            wait_until(lambda: _state(vital.pk) == AssignmentState.COORDINATOR, timeout=60,
                       message="escalation to the coordinator")
    kinds = [d.line.kind for d in RoutingDecision.objects.filter(case=vital, outcome="assigned")]
    assert kinds == ["pooled", "pooled", "provider"]
    assert vital.events.filter(kind=CaseEventKind.ESCALATED).count() == 4


def _backend_pid_waiting(case_id):
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = %s",
                    [connection.settings_dict["NAME"]])
        return cur.fetchone()[0] > 0


def test_worker_killed_mid_task_is_redelivered(live_demo, env, tmp_path):
    from pds_platform.celery import app

    case = _case(live_demo)  # the message waits in Redis: no worker yet
    d = connection.settings_dict
    holder = psycopg.connect(host=d.get("HOST") or "127.0.0.1", port=d.get("PORT") or 5432,
                             user=d.get("USER") or "postgres", dbname=d["NAME"], autocommit=False)
    try:
        holder.execute("SELECT id FROM worklist_case WHERE id = %s FOR UPDATE", [case.pk])
        with _worker(env, tmp_path, "doomed") as doomed:
            wait_until(lambda: _backend_pid_waiting(case.pk), timeout=30, message="worker blocked inside the task")
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
    finally:
        holder.rollback()
        holder.close()
    assert _state(case.pk) == AssignmentState.UNASSIGNED
    with _worker(env, tmp_path, "survivor"):
        wait_until(lambda: _state(case.pk) == AssignmentState.OFFERED, timeout=60,
                   message="redelivered task routed the case")
    assert RoutingDecision.objects.filter(case=case).count() == 1
    assert case.events.filter(kind=CaseEventKind.ASSIGNED).count() == 1
    app.control.purge()


def test_two_workers_racing_assign_each_case_once(live_demo, env, tmp_path):
    from pds_platform.celery import app

    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    with running(celery_worker_cmd("-n", "a@%h"), env, logs["a"]), \
            running(celery_worker_cmd("-n", "b@%h"), env, logs["b"]):
        wait_until(lambda: all("ready." in p.read_text(errors="replace") for p in logs.values() if p.exists())
                   and all(p.exists() for p in logs.values()), timeout=60, message="both workers ready")
        cases = [_case(live_demo, n=i) for i in range(12)]
        for c in cases:  # two more messages per case: three deliveries racing for one assignment
            app.send_task(ROUTE_TASK, args=[c.pk])
            app.send_task(ROUTE_TASK, args=[c.pk])
        wait_until(lambda: not Case.objects.filter(pk__in=[c.pk for c in cases])
                   .exclude(assignment_state=AssignmentState.OFFERED).exists(), timeout=60, message="all assigned")
        for name, path in logs.items():
            wait_until(lambda p=path: "routing.route_case" in p.read_text(errors="replace"), timeout=30,
                       message=f"worker {name} took part")
    for c in cases:
        assert RoutingDecision.objects.filter(case=c).count() == 1
        assert c.events.filter(kind=CaseEventKind.ASSIGNED).count() == 1
