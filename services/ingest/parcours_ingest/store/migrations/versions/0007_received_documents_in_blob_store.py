"""received documents in the blob store: invoice PDFs and source XML are referred to by their SHA-256

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before keep their bytes (read from the row); new ones only name their blob.
    op.add_column('invoice_pdfs', sa.Column('sha256', sa.String(length=64), nullable=True))
    op.alter_column('invoice_pdfs', 'content', existing_type=sa.LargeBinary(), nullable=True)
    op.alter_column('invoice_sources', 'content', existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # Fails while rows name a blob without their bytes: copy them back from the blob store first.
    op.alter_column('invoice_sources', 'content', existing_type=sa.LargeBinary(), nullable=False)
    op.alter_column('invoice_pdfs', 'content', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_column('invoice_pdfs', 'sha256')
