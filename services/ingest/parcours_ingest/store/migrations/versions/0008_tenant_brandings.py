"""tenant_brandings: each tenant's look on rendered PDFs, from channels' tenant.branding_changed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 21:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'tenant_brandings',
        sa.Column('tenant_id', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('primary_color', sa.String(length=7), nullable=True),
        sa.Column('text_color', sa.String(length=7), nullable=True),
        sa.Column('legal_footer', sa.String(length=300), nullable=True),
        sa.Column('logo_media_type', sa.String(length=32), nullable=True),
        sa.Column('logo', sa.LargeBinary(), nullable=True),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id'),
    )


def downgrade() -> None:
    op.drop_table('tenant_brandings')
