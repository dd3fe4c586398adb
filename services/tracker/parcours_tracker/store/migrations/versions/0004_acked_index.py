"""an index on the invoices acknowledged, for the time-to-ack metric

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('invoices_by_ack', 'invoices', ['acked_at'], unique=False,
                    postgresql_where=sa.text('acked_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('invoices_by_ack', table_name='invoices')
