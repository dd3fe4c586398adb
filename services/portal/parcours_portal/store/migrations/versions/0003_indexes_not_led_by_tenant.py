"""indexes not led by tenant_id; incidents by invoice

With tenant_id first, a generic plan of `tenant_id = $1 AND invoice_id = $2` on a table not yet
analysed took invoices_by_due on tenant_id alone and read every invoice of the tenant per lookup
(quadratic over a run). Incidents are counted per invoice.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {  # name: (table, columns before, columns after)
    "invoices_by_customer": ("invoices", ["tenant_id", "customer_ref"], ["customer_ref", "tenant_id"]),
    "invoices_by_due": ("invoices", ["tenant_id", "due_date"], ["due_date", "tenant_id"]),
    "incidents_by_status": ("incidents", ["tenant_id", "status"], ["status", "tenant_id"]),
}


def upgrade() -> None:
    for name, (table, _, after) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, after, unique=False)
    op.create_index("incidents_by_invoice", "incidents", ["invoice_id", "tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index("incidents_by_invoice", table_name="incidents")
    for name, (table, before, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, before, unique=False)
