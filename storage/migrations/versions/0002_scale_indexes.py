"""indexes for the digest, the sweeps and the stats at 1M wishes (issue 8)

- wish_event (wish_id, action, at, actor_id): a wish's first claim / fulfilment (and by whom) as one index seek;
- wish_event (action, at, wish_id, to_status): a period's events of one kind as an index range
  (the digest's counts), covering the columns they read;
- claim (claimed_at): claims made in a period (branch ranking);
- claim (ended_at, due_at, wish_id): open claims by due date (overdue list, due-soon and overdue sweeps);
- wish (published_at, community_id, rating, rated_at, id): the digest's cohort from the index alone;
- wish (status, phone_visit_since, fulfilled_at): the phone-visit list (digest, stats) from the index;
- wish (community_id) WHERE a cost is set: the budgets' communities (every digest) without a scan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

COSTED = 'est_cost IS NOT NULL OR actual_cost IS NOT NULL'


def upgrade() -> None:
    with op.batch_alter_table('wish_event', schema=None) as batch_op:
        batch_op.create_index('ix_wish_event_wish_action_at', ['wish_id', 'action', 'at', 'actor_id'], unique=False)
        batch_op.create_index('ix_wish_event_action_at', ['action', 'at', 'wish_id', 'to_status'], unique=False)
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.create_index('ix_claim_claimed_at', ['claimed_at'], unique=False)
        batch_op.create_index('ix_claim_open_due', ['ended_at', 'due_at', 'wish_id'], unique=False)
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.create_index('ix_wish_published_cohort', ['published_at', 'community_id', 'rating', 'rated_at', 'id'],
                              unique=False)
        batch_op.create_index('ix_wish_phone_list', ['status', 'phone_visit_since', 'fulfilled_at'], unique=False)
        batch_op.create_index('ix_wish_costed', ['community_id'], unique=False,
                              sqlite_where=sa.text(COSTED), postgresql_where=sa.text(COSTED))


def downgrade() -> None:
    with op.batch_alter_table('wish', schema=None) as batch_op:
        batch_op.drop_index('ix_wish_costed')
        batch_op.drop_index('ix_wish_phone_list')
        batch_op.drop_index('ix_wish_published_cohort')
    with op.batch_alter_table('claim', schema=None) as batch_op:
        batch_op.drop_index('ix_claim_open_due')
        batch_op.drop_index('ix_claim_claimed_at')
    with op.batch_alter_table('wish_event', schema=None) as batch_op:
        batch_op.drop_index('ix_wish_event_action_at')
        batch_op.drop_index('ix_wish_event_wish_action_at')
