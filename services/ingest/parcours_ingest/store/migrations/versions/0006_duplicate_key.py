"""duplicate key: an invoice number is unique per tenant, seller and issue year (was per tenant)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from parcours_ingest.domain.duplicates import seller_key_of

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('invoices', sa.Column('issue_year', sa.SmallInteger(), nullable=True))
    op.add_column('invoices', sa.Column('seller_key', sa.String(length=220), nullable=True))
    # the invoices already stored, keyed by the service's own rule (names folded as Python does, whatever the
    # database's locale)
    bind = op.get_bind()
    stored = bind.execute(sa.text("SELECT id, issue_date, document->'seller' AS seller FROM invoices")
                          .columns(id=sa.Uuid, issue_date=sa.Date, seller=postgresql.JSONB)).all()
    keys = [{"id": row.id, "year": row.issue_date.year,
             "seller": seller_key_of(name=row.seller.get("name") or "", siren=row.seller.get("siren"),
                                     siret=row.seller.get("siret"), vat_id=row.seller.get("vat_id"))}
            for row in stored]
    for start in range(0, len(keys), 1000):
        bind.execute(sa.text("UPDATE invoices SET issue_year = :year, seller_key = :seller WHERE id = :id"),
                     keys[start:start + 1000])
    op.alter_column('invoices', 'issue_year', nullable=False)
    op.alter_column('invoices', 'seller_key', nullable=False)
    op.drop_constraint('uq_invoices_tenant_number', 'invoices', type_='unique')
    op.create_unique_constraint('uq_invoices_duplicate_key', 'invoices', ['tenant_id', 'number', 'seller_key', 'issue_year'])


def downgrade() -> None:
    op.drop_constraint('uq_invoices_duplicate_key', 'invoices', type_='unique')
    op.create_unique_constraint('uq_invoices_tenant_number', 'invoices', ['tenant_id', 'number'])
    op.drop_column('invoices', 'seller_key')
    op.drop_column('invoices', 'issue_year')
