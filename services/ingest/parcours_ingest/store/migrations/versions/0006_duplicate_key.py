"""duplicate key: an invoice number is unique per tenant, seller and issue year (was per tenant)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain/duplicates.py seller_key, in SQL, for the invoices already stored
_SELLER_KEY = r"""
CASE
  WHEN document->'seller'->>'siren' IS NOT NULL THEN 'siren:' || (document->'seller'->>'siren')
  WHEN document->'seller'->>'siret' IS NOT NULL THEN 'siren:' || left(document->'seller'->>'siret', 9)
  WHEN upper(document->'seller'->>'vat_id') ~ '^FR[0-9A-Z]{2}[0-9]{9}$'
    THEN 'siren:' || right(document->'seller'->>'vat_id', 9)
  WHEN document->'seller'->>'vat_id' IS NOT NULL THEN 'vat:' || upper(document->'seller'->>'vat_id')
  ELSE 'name:' || lower(regexp_replace(btrim(document->'seller'->>'name'), '\s+', ' ', 'g'))
END"""


def upgrade() -> None:
    op.add_column('invoices', sa.Column('issue_year', sa.SmallInteger(), nullable=True))
    op.add_column('invoices', sa.Column('seller_key', sa.String(length=220), nullable=True))
    op.execute(f"UPDATE invoices SET issue_year = extract(year FROM issue_date)::smallint, seller_key = {_SELLER_KEY}")
    op.alter_column('invoices', 'issue_year', nullable=False)
    op.alter_column('invoices', 'seller_key', nullable=False)
    op.drop_constraint('uq_invoices_tenant_number', 'invoices', type_='unique')
    op.create_unique_constraint('uq_invoices_duplicate_key', 'invoices', ['tenant_id', 'number', 'seller_key', 'issue_year'])


def downgrade() -> None:
    op.drop_constraint('uq_invoices_duplicate_key', 'invoices', type_='unique')
    op.create_unique_constraint('uq_invoices_tenant_number', 'invoices', ['tenant_id', 'number'])
    op.drop_column('invoices', 'seller_key')
    op.drop_column('invoices', 'issue_year')
