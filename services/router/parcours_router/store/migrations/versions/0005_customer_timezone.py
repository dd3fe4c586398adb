"""customers.timezone: the customer's IANA time zone, published in CustomerChanged for dunning's sending window

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('customers', sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('customers', 'timezone')
