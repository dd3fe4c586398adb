"""document preparation: CGV per customer group, invoice annexes (bytes in the blob store), customer profiles

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tenant_cgv',
    sa.Column('tenant_id', sa.String(length=63), nullable=False),
    sa.Column('customer_group', sa.String(length=64), server_default='', nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('after_page', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_group')
    )
    op.create_table('invoice_annexes',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('invoice_id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.String(length=63), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_invoice_annexes_tenant_invoice', 'invoice_annexes', ['tenant_id', 'invoice_id'], unique=False)
    op.create_table('customer_profiles',
    sa.Column('tenant_id', sa.String(length=63), nullable=False),
    sa.Column('customer_ref', sa.String(length=64), nullable=False),
    sa.Column('customer_group', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_ref')
    )


def downgrade() -> None:
    op.drop_table('customer_profiles')
    op.drop_index('ix_invoice_annexes_tenant_invoice', table_name='invoice_annexes')
    op.drop_table('invoice_annexes')
    op.drop_table('tenant_cgv')
