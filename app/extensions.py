"""Extension points, registered from above: the one place where lower layers learn of what the
layers above them add (error codes, action labels, API-key verifiers, scheduled jobs, what is
rebuilt when a grid's boundary changes). Called by
`create_app` and by the CLI; idempotent. No module changes a shared table at import time."""

from __future__ import annotations

from app import errors, i18n, idempotency
from app.admission import service as admission_service
from app.auth import policy
from app.basedata import checks as basedata_checks
from app.basedata import retention as basedata_retention
from app.cases import detail as case_detail
from app.cases import managed, photos
from app.cases import service as cases_service
from app.community import clock as community_clock
from app.community import service as community_service
from app.disputes import retention as disputes_retention
from app.disputes import service as disputes_service
from app.duty import service as duty_service
from app.grids import service as grids_service
from app.loop import deadlines, scheduler
from app.loop import service as loop_service
from app.open311 import keys
from app.patrols import coverage, retention
from app.patrols import service as patrol_service
from app.push import service as push_service
from app.worker_tasks import clock as worker_tasks_clock
from app.worker_tasks import service as worker_tasks_service


def register() -> None:
    for codes in (
        idempotency.ERROR_CODES,
        photos.ERROR_CODES,
        cases_service.ERROR_CODES,
        loop_service.ERROR_CODES,
        community_service.ERROR_CODES,
        patrol_service.ERROR_CODES,
        duty_service.ERROR_CODES,
        admission_service.ERROR_CODES,
        worker_tasks_service.ERROR_CODES,
        push_service.ERROR_CODES,
        basedata_checks.ERROR_CODES,
        disputes_service.ERROR_CODES,
    ):
        errors.register_codes(codes)
    for labels in (
        loop_service.ACTION_NAMES,
        scheduler.ACTION_NAMES,
        community_service.ACTION_NAMES,
        community_clock.ACTION_NAMES,
        disputes_service.ACTION_NAMES,
    ):
        i18n.register_action_labels(labels)
    policy.register_key_verifier("open311:submit", keys.verify_key)
    scheduler.register_job("community", community_clock.tick)
    scheduler.register_job("patrols", retention.tick)
    scheduler.register_job("worker_tasks", worker_tasks_clock.tick)
    scheduler.register_job("basedata", basedata_retention.tick)
    scheduler.register_job("disputes", disputes_service.tick)
    basedata_retention.register_forgetter("disputes", disputes_retention.forget_person)
    managed.register_manager(disputes_service.MANAGER)
    case_detail.register_loop(loop_service.allowed_for, deadlines.calendar)
    grids_service.on_boundary_change(coverage.rebuild_cells)
