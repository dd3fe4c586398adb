"""partner submissions: deposits to delivery partners and their follow-up

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('partner_submissions',
    sa.Column('dispatch_id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('partner', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), server_default='invoice', nullable=False),
    sa.Column('correlation_id', sa.String(length=128), nullable=True),
    sa.Column('partner_ref', sa.String(length=200), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('last_status', sa.String(length=64), nullable=True),
    sa.Column('last_status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('checks', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('dispatch_id')
    )
    op.create_index(op.f('ix_partner_submissions_tenant_id'), 'partner_submissions', ['tenant_id'], unique=False)
    op.create_index('ix_partner_submissions_partner_ref', 'partner_submissions', ['channel', 'partner_ref'], unique=False)
    op.create_index('ix_partner_submissions_due', 'partner_submissions', ['next_check_at'], unique=False,
                    postgresql_where='next_check_at IS NOT NULL')


def downgrade() -> None:
    op.drop_index('ix_partner_submissions_due', table_name='partner_submissions', postgresql_where='next_check_at IS NOT NULL')
    op.drop_index('ix_partner_submissions_partner_ref', table_name='partner_submissions')
    op.drop_index(op.f('ix_partner_submissions_tenant_id'), table_name='partner_submissions')
    op.drop_table('partner_submissions')
