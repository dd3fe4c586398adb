"""deferred retries: sends.next_attempt_at/last_error, state 'failed', deferred_dispatches

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sends', sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('sends', sa.Column('last_error', sa.String(length=2000), nullable=True))
    op.create_index('ix_sends_next_attempt_at', 'sends', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
    op.drop_constraint('sends_state', 'sends', type_='check')
    op.create_check_constraint('sends_state', 'sends', "state IN ('sending', 'sent', 'bounced', 'failed')")
    op.create_table(
        'deferred_dispatches',
        sa.Column('dispatch_id', sa.Uuid(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('request', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('refused', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('dispatch_id'),
    )


def downgrade() -> None:
    op.drop_table('deferred_dispatches')
    op.execute("UPDATE sends SET state = 'sending' WHERE state = 'failed'")
    op.drop_constraint('sends_state', 'sends', type_='check')
    op.create_check_constraint('sends_state', 'sends', "state IN ('sending', 'sent', 'bounced')")
    op.drop_index('ix_sends_next_attempt_at', table_name='sends', postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
    op.drop_column('sends', 'last_error')
    op.drop_column('sends', 'next_attempt_at')
