"""customer settings (time zone, grouping) and customer-wide pauses; the directory's time zone;
per-invoice custom steps; invoices by customer

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_settings',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('customer_ref', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('group_reminders', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'customer_ref')
    )
    op.create_table('customer_signals',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('customer_ref', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_customer_signals_customer', 'customer_signals', ['tenant_id', 'customer_ref', 'at'], unique=False)
    op.add_column('customers', sa.Column('timezone', sa.String(length=64), nullable=True))
    op.add_column('invoices', sa.Column('custom_steps', postgresql.JSONB(astext_type=sa.Text()), server_default='[]',
                                        nullable=False))
    op.create_index('ix_invoices_customer', 'invoices', ['tenant_id', 'customer_ref', 'due_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invoices_customer', table_name='invoices')
    op.drop_column('invoices', 'custom_steps')
    op.drop_column('customers', 'timezone')
    op.drop_index('ix_customer_signals_customer', table_name='customer_signals')
    op.drop_table('customer_signals')
    op.drop_table('customer_settings')
