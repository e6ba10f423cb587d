"""SQLModel tables. Times are aware UTC (`UTCDateTime`); enums are stored as their string values.

The schema is built by Alembic migrations (`storage/migrations`), never by `create_all` in
production paths. `tests/integration/test_migrations.py` checks the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import column, func
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _dt(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class OrgUnit(SQLModel, table=True):
    """The organisation tree: street → community → grid, and Party branches under a community."""

    __tablename__ = "org_unit"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_org_unit_kind_name"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # street | community | grid | branch
    name: str = Field(sa_column=Column(String(64), nullable=False))
    parent_id: Optional[int] = Field(default=None, foreign_key="org_unit.id", index=True)


class Person(SQLModel, table=True):
    """Anyone the bot knows: residents, Party members and admins (one row per openid)."""

    __tablename__ = "person"
    __table_args__ = (Index("ix_person_phone", "phone", sqlite_where=text("phone IS NOT NULL"),  # people by phone (flags)
                            postgresql_where=text("phone IS NOT NULL")),)

    id: Optional[int] = Field(default=None, primary_key=True)
    openid: Optional[str] = Field(default=None, sa_column=Column(String(64), unique=True, nullable=True))
    role: str = Field(default="resident", sa_column=Column(String(16), nullable=False, index=True))
    name: Optional[str] = Field(default=None, sa_column=Column(String(64)))
    phone: Optional[str] = Field(default=None, sa_column=Column(String(32)))
    community_id: Optional[int] = Field(default=None, foreign_key="org_unit.id", index=True)
    grid_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    branch_id: Optional[int] = Field(default=None, foreign_key="org_unit.id", index=True)
    skills: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    subscribed: bool = True
    created_at: datetime = _dt(nullable=False)
    last_inbound_at: Optional[datetime] = _dt()  # opens the 48-hour customer-service window
    window_sent: int = 0  # customer-service messages used in the current window (max 5)
    pending_evidence_wish_id: Optional[int] = None  # a photo sent next goes to this wish
    link_failures: int = 0  # wrong `关联` attempts in a row (issue 9: limited, then locked for a while)
    link_locked_until: Optional[datetime] = _dt()


COSTED = "est_cost IS NOT NULL OR actual_cost IS NOT NULL"  # ix_wish_costed


def _set(column: str) -> dict[str, Any]:
    """A partial index's WHERE on both backends: only the rows where `column` is set."""
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


class close_span(FunctionElement[Any]):
    """How long a wish took from claim to close, `closed_at - claimed_at` (indexed: ix_wish_close_span).

    An interval on PostgreSQL; on SQLite (naive UTC text) `julianday(closed_at) - julianday(claimed_at)`,
    in days. Queries use this very expression so that they match the index.
    """

    inherit_cache = True
    name = "close_span"

    def __init__(self, closed: Any = None, claimed: Any = None) -> None:
        super().__init__(column("closed_at") if closed is None else closed,
                         column("claimed_at") if claimed is None else claimed)


@compiles(close_span)
def _close_span(element: close_span, compiler: Any, **kw: Any) -> str:
    closed, claimed = element.clauses
    return "(" + compiler.process(closed - claimed, **kw) + ")"


@compiles(close_span, "sqlite")
def _close_span_sqlite(element: close_span, compiler: Any, **kw: Any) -> str:
    closed, claimed = element.clauses
    return "(" + compiler.process(func.julianday(closed) - func.julianday(claimed), **kw) + ")"


class Wish(SQLModel, table=True):
    __tablename__ = "wish"
    __table_args__ = (
        Index("ix_wish_status_published", "status", "published_at"),
        Index("ix_wish_resident_status", "resident_id", "status"),
        Index("ix_wish_claimer_status", "claimer_id", "status"),  # not partial: common problems ask claimer_id IS NULL
        Index("ix_wish_created_at", "created_at"),
        Index("ix_wish_status_id", "status", "id"),  # dashboard filters + keyset paging (id DESC)
        Index("ix_wish_category_id", "category", "id"),
        Index("ix_wish_tier_id", "tier", "id"),
        Index("ix_wish_community_recent", "community_id", "id"),  # also every `community_id = ?` (and the foreign key)
        Index("ix_wish_community_created", "community_id", "created_at"),  # a community admin's rates and trend
        Index("ix_wish_phone_list", "status", "phone_visit_since", "fulfilled_at"),  # the phone-visit list, from the index
        # Partial `WHERE col IS NOT NULL`: a new wish is not published, fulfilled or on the phone-visit list yet,
        # so its INSERT skips these (migration 0004). Their queries compare the column or ask IS NOT NULL.
        Index("ix_wish_published_at", "published_at", **_set("published_at")),  # the rates: wishes published in a period
        Index("ix_wish_community_published", "community_id", "published_at", **_set("published_at")),
        # the digest's cohort (wishes published in a period) read from the index alone
        Index("ix_wish_published_cohort", "published_at", "community_id", "rating", "rated_at", "id", **_set("published_at")),
        Index("ix_wish_fulfilled_at", "fulfilled_at", **_set("fulfilled_at")),
        Index("ix_wish_community_fulfilled", "community_id", "fulfilled_at", **_set("fulfilled_at")),
        Index("ix_wish_phone_visit", "phone_visit_since", **_set("phone_visit_since")),
        # the budgets' communities with any cost: a tiny partial index instead of a scan of every wish
        Index("ix_wish_costed", "community_id", sqlite_where=text(COSTED), postgresql_where=text(COSTED)),
        # the honest-numbers flags (bot/services/flags.py): small partial indexes a plain new wish is not in
        Index("ix_wish_filed_by", "filed_by_id", **_set("filed_by_id")),
        Index("ix_wish_contact_phone", "contact_phone", **_set("contact_phone")),
        Index("ix_wish_close_span", close_span(), **_set("closed_at")),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    resident_id: int = Field(foreign_key="person.id")
    status: str = Field(default="submitted", sa_column=Column(String(16), nullable=False))
    version: int = 0
    tier: str = Field(default="personal", sa_column=Column(String(16), nullable=False))
    category: str = Field(default="其他", sa_column=Column(String(16), nullable=False))
    content: str = Field(sa_column=Column(Text, nullable=False))  # the resident's words, private details removed
    masked: str = Field(sa_column=Column(Text, nullable=False))  # safe for the claim channel and the wall
    private_details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    contact_phone: Optional[str] = Field(default=None, sa_column=Column(String(32)))
    community_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")  # indexed: ix_wish_community_recent
    grid_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    location_label: Optional[str] = Field(default=None, sa_column=Column(String(200)))
    source: str = Field(default="text", sa_column=Column(String(16), nullable=False))  # text | dialogue | voice | proxy
    voice_media_id: Optional[str] = Field(default=None, sa_column=Column(String(128)))
    consent_method: Optional[str] = Field(default=None, sa_column=Column(String(16)))
    filed_by_id: Optional[int] = Field(default=None, foreign_key="person.id")
    concerns_minor: bool = False
    guardian_consent_at: Optional[datetime] = _dt()
    public: bool = True  # on the wish wall (不公开 turns it off)
    assigned_unit: Optional[str] = Field(default=None, sa_column=Column(String(100)))
    claimer_id: Optional[int] = Field(default=None, foreign_key="person.id")
    claim_id: Optional[int] = None
    created_at: datetime = _dt(nullable=False)
    published_at: Optional[datetime] = _dt()
    claimed_at: Optional[datetime] = _dt()
    due_at: Optional[datetime] = _dt()
    fulfilled_at: Optional[datetime] = _dt()
    rated_at: Optional[datetime] = _dt()
    closed_at: Optional[datetime] = _dt()
    rating: Optional[int] = None
    feedback: Optional[str] = Field(default=None, sa_column=Column(String(16)))  # solved | partly | unsolved
    feedback_note: Optional[str] = Field(default=None, sa_column=Column(Text))
    return_visit_prompted_at: Optional[datetime] = _dt()
    return_visit_reminded_at: Optional[datetime] = _dt()
    phone_visit_since: Optional[datetime] = _dt()  # on the admins' phone-visit list (电话回访)
    reposted_at: Optional[datetime] = _dt()
    est_cost: Optional[float] = None
    actual_cost: Optional[float] = None
    cost_approved_at: Optional[datetime] = _dt()
    cost_pending: bool = False  # issue 10: a cost past the remaining budget waits for 批准


class Budget(SQLModel, table=True):
    """A community's yearly budget for material wishes, in yuan (issue 10).

    Its row is locked (`FOR UPDATE`) while a cost is checked against it, so two claims or
    approvals at once cannot both spend the same remainder.
    """

    __tablename__ = "budget"
    __table_args__ = (UniqueConstraint("community_id", "year", name="uq_budget_community_year"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    community_id: int = Field(foreign_key="org_unit.id")
    year: int
    amount: float
    updated_at: datetime = _dt(nullable=False)


class WishEvent(SQLModel, table=True):
    """One step of a wish's timeline: written in the same transaction as the state change."""

    __tablename__ = "wish_event"
    __table_args__ = (
        Index("ix_wish_event_wish_action_at", "wish_id", "action", "at", "actor_id"),  # first claim/fulfilment, who fulfilled
        Index("ix_wish_event_action_at", "action", "at", "wish_id", "to_status"),  # a period's events of a kind
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wish.id")  # indexed: ix_wish_event_wish_action_at starts with it
    at: datetime = _dt(nullable=False)
    actor_id: Optional[int] = Field(default=None, foreign_key="person.id")
    actor_role: str = Field(sa_column=Column(String(16), nullable=False))
    action: str = Field(sa_column=Column(String(24), nullable=False))
    from_status: Optional[str] = Field(default=None, sa_column=Column(String(16)))
    to_status: Optional[str] = Field(default=None, sa_column=Column(String(16)))
    note: Optional[str] = Field(default=None, sa_column=Column(Text))
    media_id: Optional[str] = Field(default=None, sa_column=Column(String(256)))


class Claim(SQLModel, table=True):
    """A member's promise on a wish: one row per claim, kept after release or lapse."""

    __tablename__ = "claim"
    __table_args__ = (
        Index("ix_claim_member_claimed", "member_id", "claimed_at"),
        Index("ix_claim_branch_id", "branch_id"),  # dashboard: wishes by the claimer's branch
        Index("ix_claim_claimed_at", "claimed_at"),  # claims made in a period (digest)
        Index("ix_claim_open_due", "ended_at", "due_at", "wish_id"),  # open claims by due date (overdue list, sweeps)
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    wish_id: int = Field(foreign_key="wish.id", index=True)
    member_id: int = Field(foreign_key="person.id")
    branch_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    claimed_at: datetime = _dt(nullable=False)
    due_at: datetime = _dt(nullable=False)
    contact_due_at: Optional[datetime] = _dt()
    contacted_at: Optional[datetime] = _dt()
    safety_code: Optional[str] = Field(default=None, sa_column=Column(String(8)))
    helpers: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ended_at: Optional[datetime] = _dt()
    outcome: Optional[str] = Field(default=None, sa_column=Column(String(16)))  # fulfilled | released | lapsed | reassigned
    reminded_due_at: Optional[datetime] = _dt()
    overdue_notified_at: Optional[datetime] = _dt()


class InboundLog(SQLModel, table=True):
    """Messages already handled, for WeChat's retries: the same key gets the stored reply."""

    __tablename__ = "inbound_log"

    dedupe_key: str = Field(sa_column=Column(String(128), primary_key=True))
    received_at: datetime = _dt(nullable=False, index=True)
    msg_type: str = Field(sa_column=Column(String(32), nullable=False))
    reply: Optional[str] = Field(default=None, sa_column=Column(Text))


class DialogueState(SQLModel, table=True):
    """Where a person is in a multi-step dialogue; expires on its own."""

    __tablename__ = "dialogue_state"

    person_id: int = Field(foreign_key="person.id", primary_key=True)
    flow: str = Field(sa_column=Column(String(32), nullable=False))
    step: str = Field(sa_column=Column(String(32), nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    expires_at: datetime = _dt(nullable=False)


class Outbox(SQLModel, table=True):
    """An outbound message, written in the same transaction as the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),
                      Index("ix_outbox_recipient", "recipient", "id"))  # one user's earlier rows keep the order

    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str = Field(sa_column=Column(String(16), nullable=False))  # cs | template | claim_webhook | admin_webhook
    recipient: Optional[str] = Field(default=None, sa_column=Column(String(64)))  # openid for cs/template
    kind: str = Field(sa_column=Column(String(32), nullable=False))  # notice, return_visit, progress, reminder, digest, post…
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: Optional[str] = Field(default=None, sa_column=Column(String(160), unique=True))
    state: str = Field(default="pending", sa_column=Column(String(12), nullable=False))  # pending | sent | dead | waiting | skipped
    created_at: datetime = _dt(nullable=False)
    next_attempt_at: datetime = _dt(nullable=False)
    attempts: int = 0
    lease_until: Optional[datetime] = _dt()
    sent_at: Optional[datetime] = _dt()
    last_error: Optional[str] = Field(default=None, sa_column=Column(String(500)))


class AccessToken(SQLModel, table=True):
    """The WeChat access token, shared by every process; refreshed by one at a time."""

    __tablename__ = "access_token"

    app_id: str = Field(sa_column=Column(String(64), primary_key=True))
    token: Optional[str] = Field(default=None, sa_column=Column(String(1024)))
    expires_at: Optional[datetime] = _dt()
    refreshing_until: Optional[datetime] = _dt()


class InviteCode(SQLModel, table=True):
    __tablename__ = "invite_code"

    code: str = Field(sa_column=Column(String(16), primary_key=True))
    branch_id: int = Field(foreign_key="org_unit.id")
    name: Optional[str] = Field(default=None, sa_column=Column(String(64)))
    phone: Optional[str] = Field(default=None, sa_column=Column(String(32)))
    community_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    grid_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    skills: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = _dt(nullable=False)
    expires_at: datetime = _dt(nullable=False)
    used_by: Optional[int] = Field(default=None, foreign_key="person.id")
    used_at: Optional[datetime] = _dt()


class AdminUser(SQLModel, table=True):
    """A dashboard login. `community_id` NULL sees everything; `person_id` acts on timelines."""

    __tablename__ = "admin_user"

    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    password_hash: str = Field(sa_column=Column(String(256), nullable=False))
    community_id: Optional[int] = Field(default=None, foreign_key="org_unit.id")
    person_id: int = Field(foreign_key="person.id")
    failed_attempts: int = 0
    locked_until: Optional[datetime] = _dt()
    created_at: datetime = _dt(nullable=False)


class SweepRun(SQLModel, table=True):
    """A once-per-period job already done (a digest for a period, a Monday nudge)."""

    __tablename__ = "sweep_run"

    key: str = Field(sa_column=Column(String(128), primary_key=True))
    done_at: datetime = _dt(nullable=False)

