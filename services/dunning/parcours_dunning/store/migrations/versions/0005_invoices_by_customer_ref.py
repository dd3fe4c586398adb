"""invoices by customer: customer_ref leads the index, so a lookup by primary key can only use the key

With tenant_id first, a generic plan of `tenant_id = $1 AND invoice_id = $2` on a table not yet
analysed took this index on tenant_id alone and read every invoice of the tenant per lookup.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_invoices_customer', table_name='invoices')
    op.create_index('ix_invoices_customer_ref', 'invoices', ['customer_ref', 'tenant_id', 'due_date'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_invoices_customer_ref', table_name='invoices')
    op.create_index('ix_invoices_customer', 'invoices', ['tenant_id', 'customer_ref', 'due_date'], unique=False)
