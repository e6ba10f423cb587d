"""indexes for the honest-numbers flags at 1M wishes (issue 8, bot/services/flags.py)

The flags start from the few claimers (a loose index scan of claim.member_id) and look up only
the wishes and people that can match them, so each needs a small index to look them up by:
- wish (filed_by_id) WHERE filed_by_id IS NOT NULL: wishes an admin filed (代办), by filer;
- wish (contact_phone) WHERE contact_phone IS NOT NULL: wishes by their contact phone;
- person (phone) WHERE phone IS NOT NULL: people by phone;
- wish (closed_at - claimed_at) WHERE closed_at IS NOT NULL: closed wishes by how long they took
  (the fast closes as an index range). SQLite stores naive UTC text, so there the expression is
  julianday(closed_at) - julianday(claimed_at), in days: exactly what `storage.models.close_span`
  compiles to, so the query matches the index.
A plain new wish (no filer, no contact phone, not closed) is in none of the partial wish indexes.

PostgreSQL keeps no statistics on the expression of a partial index, so it would guess a third of
the closed wishes are fast and may prefer another index (a community's 100k wishes) to this range:
PostgreSQL 14+ gets extended statistics on the expression (st_wish_close_span), analysed here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

CLOSE_SPAN = {'sqlite': 'julianday(closed_at) - julianday(claimed_at)', 'postgresql': 'closed_at - claimed_at'}


def _partial(column: str) -> dict[str, sa.TextClause]:
    where = sa.text(f'{column} IS NOT NULL')
    return {'sqlite_where': where, 'postgresql_where': where}


def _pg_statistics() -> bool:
    dialect = op.get_context().dialect
    return dialect.name == 'postgresql' and (dialect.server_version_info or (0,)) >= (14,)


def upgrade() -> None:
    span = CLOSE_SPAN.get(op.get_context().dialect.name, CLOSE_SPAN['postgresql'])
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.create_index('ix_wish_filed_by', ['filed_by_id'], unique=False, **_partial('filed_by_id'))
        batch_op.create_index('ix_wish_contact_phone', ['contact_phone'], unique=False, **_partial('contact_phone'))
        batch_op.create_index('ix_wish_close_span', [sa.text(f'({span})')], unique=False, **_partial('closed_at'))
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index('ix_person_phone', ['phone'], unique=False, **_partial('phone'))
    if _pg_statistics():
        op.execute(f'CREATE STATISTICS IF NOT EXISTS st_wish_close_span ON ({span}) FROM wish')
        # Only a table with rows: ANALYZE of an empty one records "0 rows, vacuumed", and PostgreSQL
        # then trusts the tiny size it sees while the first wishes arrive (without it, an unanalyzed
        # table is assumed to be at least ten pages). Foreign-key checks against wish, whose cached
        # plans turn generic after five runs, kept a sequential scan made then as the table grew.
        if op.get_bind().execute(sa.text('SELECT EXISTS (SELECT 1 FROM wish)')).scalar():
            op.execute('ANALYZE wish')


def downgrade() -> None:
    if _pg_statistics():
        op.execute('DROP STATISTICS IF EXISTS st_wish_close_span')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index('ix_person_phone')
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.drop_index('ix_wish_close_span')
        batch_op.drop_index('ix_wish_contact_phone')
        batch_op.drop_index('ix_wish_filed_by')
