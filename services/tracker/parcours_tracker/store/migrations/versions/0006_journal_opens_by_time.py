"""link opens found by when they were learned (the `since` filter), instead of stamping their invoices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('journal_opens_by_time', 'journal', ['tenant_id', 'recorded_at'], unique=False,
                    postgresql_where=sa.text("kind IN ('opened', 'opened_by_machine')"))


def downgrade() -> None:
    op.drop_index('journal_opens_by_time', table_name='journal')
