"""bounces: return-path correlation and 'bounced' sends

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sends', sa.Column('purpose', sa.String(length=16), server_default='invoice', nullable=False))
    op.add_column('sends', sa.Column('correlation_id', sa.String(length=128), nullable=True))
    op.add_column('sends', sa.Column('bounced_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('sends', sa.Column('bounce_status', sa.String(length=16), nullable=True))
    op.add_column('sends', sa.Column('bounce_diagnostic', sa.String(length=2000), nullable=True))
    op.create_index(op.f('ix_sends_message_id'), 'sends', ['message_id'], unique=False)
    op.drop_constraint('sends_state', 'sends', type_='check')
    op.create_check_constraint('sends_state', 'sends', "state IN ('sending', 'sent', 'bounced')")


def downgrade() -> None:
    op.execute("UPDATE sends SET state = 'sent' WHERE state = 'bounced'")
    op.drop_constraint('sends_state', 'sends', type_='check')
    op.create_check_constraint('sends_state', 'sends', "state IN ('sending', 'sent')")
    op.drop_index(op.f('ix_sends_message_id'), table_name='sends')
    op.drop_column('sends', 'bounce_diagnostic')
    op.drop_column('sends', 'bounce_status')
    op.drop_column('sends', 'bounced_at')
    op.drop_column('sends', 'correlation_id')
    op.drop_column('sends', 'purpose')
