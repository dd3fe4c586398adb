"""invoice number keys (bank statement matching) and the `since` filter

invoices.number_key: the invoice number in upper case without separators, as remittance
information quotes it; filled in for the invoices already tracked. Indexes for matching a
statement line by number and for listing the invoices changed since an instant.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoices', sa.Column(
        'number_key', sa.String(length=64), nullable=True,
        comment='The number in upper case without separators, as bank statements quote it.'))
    op.execute("UPDATE invoices SET number_key = regexp_replace(upper(number), '[^A-Z0-9]', '', 'g') "
               "WHERE number IS NOT NULL")
    op.create_index('invoices_by_number_key', 'invoices', ['tenant_id', 'number_key'], unique=False)
    op.create_index('invoices_by_update', 'invoices', ['tenant_id', 'updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('invoices_by_update', table_name='invoices')
    op.drop_index('invoices_by_number_key', table_name='invoices')
    op.drop_column('invoices', 'number_key')
