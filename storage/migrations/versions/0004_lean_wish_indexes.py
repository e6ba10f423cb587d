"""fewer indexes for a new wish to maintain (the 许愿 INSERT hot path)

Every submitted wish paid for 17 non-partial indexes on `wish` (and 3 on `wish_event`), about
2 µs of SQLite CPU each. Now:
- dropped: wish (community_id), an exact duplicate of ix_wish_community_recent (community_id, id)
  (SQLite keys every index by rowid = id); wish_event (wish_id), a prefix of
  ix_wish_event_wish_action_at, which now serves the timeline reads and the foreign key;
- partial `WHERE col IS NOT NULL` (a new wish has no publication, fulfilment or phone visit yet,
  so its INSERT skips them): wish (published_at), (published_at, community_id, rating, rated_at, id),
  (community_id, published_at), (fulfilled_at), (community_id, fulfilled_at), (phone_visit_since).
  Every query reading them compares the column (a range, `>=`) or asks `IS NOT NULL`, which both
  SQLite and PostgreSQL prove implies the index's WHERE (tests/integration/test_wish_indexes.py).
  ix_wish_published_at stays (partial) although the cohort index starts with the same column:
  PostgreSQL's count of a period's publications reads 40% more pages from the wider index.
- kept non-partial: wish (claimer_id, status): the common-problems query asks `claimer_id IS NULL`
  and reads it (both backends), and PostgreSQL counts wishes by state from it (deduplicated, small).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 06:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# index name -> (columns, the column a new wish leaves NULL)
PARTIAL = {
    'ix_wish_published_at': (['published_at'], 'published_at'),
    'ix_wish_published_cohort': (['published_at', 'community_id', 'rating', 'rated_at', 'id'], 'published_at'),
    'ix_wish_community_published': (['community_id', 'published_at'], 'published_at'),
    'ix_wish_fulfilled_at': (['fulfilled_at'], 'fulfilled_at'),
    'ix_wish_community_fulfilled': (['community_id', 'fulfilled_at'], 'fulfilled_at'),
    'ix_wish_phone_visit': (['phone_visit_since'], 'phone_visit_since'),
}


def _partial(column: str) -> dict[str, sa.TextClause]:
    where = sa.text(f'{column} IS NOT NULL')
    return {'sqlite_where': where, 'postgresql_where': where}


def upgrade() -> None:
    with op.batch_alter_table('wish_event', schema=None) as batch_op:
        batch_op.drop_index('ix_wish_event_wish_id')
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.drop_index('ix_wish_community_id')
        for name, (columns, column) in PARTIAL.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False, **_partial(column))


def downgrade() -> None:
    with op.batch_alter_table('wish', schema=None) as batch_op:
        for name, (columns, _column) in PARTIAL.items():
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
        batch_op.create_index('ix_wish_community_id', ['community_id'], unique=False)
    with op.batch_alter_table('wish_event', schema=None) as batch_op:
        batch_op.create_index('ix_wish_event_wish_id', ['wish_id'], unique=False)
