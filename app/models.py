"""Every table's model, imported in one place (for Alembic and for tests)."""

from app.admission.models import AdmissionItem, AdmissionList
from app.areas.models import Area
from app.audit.models import AuditEntry
from app.auth.models import AuthSession, RefreshToken
from app.basedata.models import (
    CasePerson,
    Change,
    House,
    Household,
    Membership,
    Organisation,
    Resident,
    ResidentTag,
    Tombstone,
)
from app.buildings.models import Building
from app.cases.models import Attachment, Case, CaseEvent, IdempotencyKey
from app.categories.models import Category, CategoryClass
from app.community.models import Step, Task, Unit
from app.db import Base
from app.deliberation.models import Matter, Opinion, Rating
from app.departments.models import Department
from app.disputes.models import Dispute, FollowUp, Party
from app.disputes.models import Session as DisputeSession
from app.duty.models import DutySlot
from app.events.models import Event, WebhookDelivery, WebhookSubscription
from app.grids.models import Grid, GridBoundary
from app.lists.models import ListReview, Need, Project, ProjectResource, ProjectUnit, Resource
from app.loop.models import Assignment, RoutingRule, WorkSchedule
from app.meetings.models import Meeting, UnitRating
from app.open311.models import ApiKey, Open311Request
from app.patrols.models import (
    Checkin,
    Checkpoint,
    Patrol,
    PatrolCell,
    PatrolCellHit,
    PatrolPoint,
    Visit,
    VisitPurpose,
)
from app.push.models import PushCursor, PushDelivery, PushSubscription
from app.ratelimit import RateCounter
from app.stats.models import CaseFact, DeptFact, Thresholds, WorkCalendarDay, WorkHours
from app.users.models import Post, PostGrid, User
from app.volunteers.models import PartyMember, Service, SupportMeasure, VolunteerTask
from app.worker_tasks.models import WorkerTask

__all__ = [
    "AdmissionItem",
    "AdmissionList",
    "ApiKey",
    "Area",
    "Assignment",
    "Attachment",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Building",
    "Case",
    "CaseEvent",
    "CaseFact",
    "CasePerson",
    "Category",
    "CategoryClass",
    "Change",
    "Checkin",
    "Checkpoint",
    "Department",
    "DeptFact",
    "Dispute",
    "DisputeSession",
    "DutySlot",
    "Event",
    "FollowUp",
    "Grid",
    "GridBoundary",
    "House",
    "Household",
    "IdempotencyKey",
    "ListReview",
    "Matter",
    "Meeting",
    "Membership",
    "Need",
    "Open311Request",
    "Opinion",
    "Organisation",
    "Party",
    "PartyMember",
    "Patrol",
    "PatrolCell",
    "PatrolCellHit",
    "PatrolPoint",
    "Post",
    "PostGrid",
    "Project",
    "ProjectResource",
    "ProjectUnit",
    "PushCursor",
    "PushDelivery",
    "PushSubscription",
    "RateCounter",
    "Rating",
    "RefreshToken",
    "Resident",
    "ResidentTag",
    "Resource",
    "RoutingRule",
    "Service",
    "Step",
    "SupportMeasure",
    "Task",
    "Thresholds",
    "Tombstone",
    "Unit",
    "UnitRating",
    "User",
    "Visit",
    "VisitPurpose",
    "VolunteerTask",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkCalendarDay",
    "WorkHours",
    "WorkSchedule",
    "WorkerTask",
]
