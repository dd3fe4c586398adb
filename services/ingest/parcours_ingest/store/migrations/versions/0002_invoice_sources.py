"""invoices read from XML or Factur-X: their source document and format

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoices', sa.Column('source_format', sa.String(length=16), server_default='json', nullable=False))
    op.create_table('invoice_sources',
    sa.Column('invoice_id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('invoice_id')
    )


def downgrade() -> None:
    op.drop_table('invoice_sources')
    op.drop_column('invoices', 'source_format')
