"""agents: index (tenant_id, agent_id) so a tenant's pages come in id order without a sort

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_agents_tenant_id", "agents", ["tenant_id", "agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agents_tenant_id", table_name="agents")
