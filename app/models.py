"""Every table's model, imported in one place (for Alembic and for tests)."""

from app.areas.models import Area
from app.audit.models import AuditEntry
from app.auth.models import AuthSession, RefreshToken
from app.buildings.models import Building
from app.cases.models import Attachment, Case, CaseEvent, IdempotencyKey
from app.categories.models import Category, CategoryClass
from app.db import Base
from app.departments.models import Department
from app.events.models import Event, WebhookDelivery, WebhookSubscription
from app.grids.models import Grid, GridBoundary
from app.loop.models import Assignment, RoutingRule, WorkSchedule
from app.ratelimit import RateCounter
from app.users.models import Post, PostGrid, User

__all__ = [
    "Area",
    "Assignment",
    "Attachment",
    "AuditEntry",
    "AuthSession",
    "Base",
    "Building",
    "Case",
    "CaseEvent",
    "Category",
    "CategoryClass",
    "Department",
    "Event",
    "Grid",
    "GridBoundary",
    "IdempotencyKey",
    "Post",
    "PostGrid",
    "RateCounter",
    "RefreshToken",
    "RoutingRule",
    "User",
    "WebhookDelivery",
    "WebhookSubscription",
    "WorkSchedule",
]
