"""lifecycle, payments, incidents, receipt timers, click nonces

The 2026 lifecycle code on invoices; payments (idempotent by payment id); incidents (one open per
invoice and kind); stored receipt timers (partial index on the due ones); single-use page nonces of
human views.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:30:44.337736
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), sa.Identity(always=False), nullable=False, comment='Keyset pagination order.'),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False, comment='open | resolved'),
    sa.Column('evidence', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('suggested_action', sa.String(length=64), nullable=True),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.String(length=2000), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('incident_id'),
    sa.UniqueConstraint('seq')
    )
    op.create_index('incidents_by_invoice', 'incidents', ['tenant_id', 'invoice_id'], unique=False)
    op.create_index('incidents_by_tenant', 'incidents', ['tenant_id', 'seq'], unique=False)
    op.create_index('incidents_one_open', 'incidents', ['tenant_id', 'invoice_id', 'kind'], unique=True, postgresql_where=sa.text("status = 'open'"))
    op.create_table('payments',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('payment_id', sa.String(length=128), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False, comment='transmitted | received'),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('event_id', sa.Uuid(), nullable=False, comment='The journal entry (and PaymentRecorded) of its last change.'),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('tenant_id', 'payment_id')
    )
    op.create_index('payments_by_invoice', 'payments', ['tenant_id', 'invoice_id'], unique=False)
    op.create_table('receipt_timers',
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('invoice_id', sa.Uuid(), nullable=False),
    sa.Column('channel', sa.String(length=64), nullable=False),
    sa.Column('dispatch_id', sa.Uuid(), nullable=True),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('proof', sa.String(length=32), nullable=False),
    sa.Column('expect_by', sa.DateTime(timezone=True), nullable=False),
    sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('tenant_id', 'invoice_id')
    )
    op.create_index('receipt_timers_due', 'receipt_timers', ['expect_by'], unique=False, postgresql_where=sa.text('fired_at IS NULL'))
    op.add_column('clicks', sa.Column('nonce', sa.String(length=128), nullable=True))
    op.create_unique_constraint('clicks_nonce_key', 'clicks', ['nonce'])  # PostgreSQL's default name
    op.add_column('invoices', sa.Column('code', sa.SmallInteger(), nullable=True, comment='2026 lifecycle code of the status, if it has one.'))
    # Existing projections: the technical status `dispatched` is now `sent`, and every status gets its code.
    op.execute("UPDATE invoices SET status = 'sent' WHERE status = 'dispatched'")
    op.execute("UPDATE invoices SET code = CASE status WHEN 'received' THEN 200 WHEN 'queued' THEN 200 "
               "WHEN 'sent' THEN 201 WHEN 'delivered' THEN 202 WHEN 'viewed' THEN 203 END")


def downgrade() -> None:
    op.drop_column('invoices', 'code')
    op.execute("UPDATE invoices SET status = 'dispatched' WHERE status = 'sent'")
    op.drop_constraint('clicks_nonce_key', 'clicks', type_='unique')
    op.drop_column('clicks', 'nonce')
    op.drop_index('receipt_timers_due', table_name='receipt_timers', postgresql_where=sa.text('fired_at IS NULL'))
    op.drop_table('receipt_timers')
    op.drop_index('payments_by_invoice', table_name='payments')
    op.drop_table('payments')
    op.drop_index('incidents_one_open', table_name='incidents', postgresql_where=sa.text("status = 'open'"))
    op.drop_index('incidents_by_tenant', table_name='incidents')
    op.drop_index('incidents_by_invoice', table_name='incidents')
    op.drop_table('incidents')
