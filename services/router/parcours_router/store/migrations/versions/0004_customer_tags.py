"""customers.tags: free labels, published in CustomerChanged for dunning's customer_tag conditions

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
    op.add_column('customers', sa.Column('tags', postgresql.JSONB(astext_type=sa.Text()), server_default='[]',
                                         nullable=False))


def downgrade() -> None:
    op.drop_column('customers', 'tags')
