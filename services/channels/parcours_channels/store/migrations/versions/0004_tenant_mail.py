"""tenant mail: sender domains with sealed DKIM keys, branding, template overrides

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sender_domains',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('from_address', sa.String(length=320), nullable=False),
        sa.Column('from_name', sa.String(length=200), nullable=True),
        sa.Column('selector', sa.String(length=63), nullable=False),
        sa.Column('sealed_private_key', sa.Text(), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id'),
    )
    op.create_table(
        'brandings',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('logo_url', sa.String(length=2000), nullable=True),
        sa.Column('logo_media_type', sa.String(length=32), nullable=True),
        sa.Column('logo_data', sa.LargeBinary(), nullable=True),
        sa.Column('primary_color', sa.String(length=7), nullable=True),
        sa.Column('text_color', sa.String(length=7), nullable=True),
        sa.Column('signature', sa.String(length=2000), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id'),
    )
    op.create_table(
        'template_overrides',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('part', sa.String(length=16), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'language', 'part'),
    )


def downgrade() -> None:
    op.drop_table('template_overrides')
    op.drop_table('brandings')
    op.drop_table('sender_domains')
