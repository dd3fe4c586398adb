"""prepared documents: the rendered PDFs and outgoing Factur-X built for invoices, cached by their inputs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('prepared_documents',
    sa.Column('tenant_id', sa.String(length=63), nullable=False),
    sa.Column('inputs_key', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'inputs_key')
    )
    op.create_index('ix_prepared_documents_invoice', 'prepared_documents', ['invoice_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_prepared_documents_invoice', table_name='prepared_documents')
    op.drop_table('prepared_documents')
