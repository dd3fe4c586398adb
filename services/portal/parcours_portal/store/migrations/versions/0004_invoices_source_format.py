"""invoices: what each was received as (json, ubl, cii, factur-x), from InvoiceSummary.source_format

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoices', sa.Column('source_format', sa.String(length=16), nullable=True,
                                        comment='json, ubl, cii, factur-x (ingest keeps the XML)'))


def downgrade() -> None:
    op.drop_column('invoices', 'source_format')
