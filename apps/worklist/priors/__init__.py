"""Priors from the site PACS (issue 19 point 4): a case's earlier studies of the same patient, queried on the site's
PACS (C-FIND, study root) and retrieved (C-MOVE to the gateway) so that the radiologist compares them.

Modules: ``models`` (the rows: one query per case, one prior per study found), ``rules`` (pure: who the query
names, which answers are the patient's, which priors are relevant), ``scu`` (the DICOM network calls, pynetdicom),
``services`` (the state machine, audited), ``selectors`` (reads for the case page and the viewer), ``views``
(the case page's section and its on-demand retrieval). The tasks are ``apps.worklist.tasks``.

Invariants: PostgreSQL is the truth (a row records each state; a Celery message is a hint, re-driven by beat).
A retrieved prior is a Study like any other, never a case of its own nor the case's current study: its
``PriorStudy`` row is written before the C-MOVE, and the study hook that attaches complete studies recognises
it (``services.prior_arrived``). Who may see the case sees its priors, nobody else.
"""

# Celery task names: contracts between processes (the tasks are apps.worklist.tasks).
QUERY_TASK = "worklist.priors_query"
RETRIEVE_TASK = "worklist.prior_retrieve"
REDRIVE_TASK = "worklist.priors_redrive"
