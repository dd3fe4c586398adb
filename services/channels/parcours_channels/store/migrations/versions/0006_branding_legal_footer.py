"""brandings.legal_footer: the line ingest prints at the foot of the PDFs it renders

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 21:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('brandings', sa.Column('legal_footer', sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column('brandings', 'legal_footer')
