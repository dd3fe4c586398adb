"""the statement line that confirmed a transmitted payment, so that a re-import knows the line

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('payments', sa.Column('confirmed_by', sa.String(length=128), nullable=True,
                                        comment='The bank statement line that confirmed it (a transmitted payment).'))
    op.create_index('payments_by_confirming_line', 'payments', ['tenant_id', 'confirmed_by'], unique=True,
                    postgresql_where=sa.text('confirmed_by IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('payments_by_confirming_line', table_name='payments')
    op.drop_column('payments', 'confirmed_by')
