"""Create roles, permissions and their grants: admin (all) and user (personView). Which caller has which
role comes from the SEED_USERS setting (services/common/seed.py); 0002 removes the demo callers this once
gave roles to.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)

PERMISSIONS = ["personView", "personAdd", "personEdit", "personDelete"]


def upgrade() -> None:
    roles = op.create_table(
        "roles",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
    )
    permissions = op.create_table(
        "permissions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
    )
    grants = op.create_table(
        "role_permissions",
        sa.Column("role_id", sa.Integer, sa.ForeignKey("roles.id"), primary_key=True),
        sa.Column("permission_id", sa.Integer, sa.ForeignKey("permissions.id"), primary_key=True),
    )
    op.create_table(
        "caller_roles",
        sa.Column("caller_id", sa.Integer, primary_key=True),
        sa.Column("role_id", sa.Integer, sa.ForeignKey("roles.id"), primary_key=True),
    )
    op.bulk_insert(roles, [{"id": 1, "name": "admin"}, {"id": 2, "name": "user"}])
    op.bulk_insert(permissions, [{"id": i, "name": name} for i, name in enumerate(PERMISSIONS, 1)])
    op.bulk_insert(
        grants,
        [{"role_id": 1, "permission_id": i} for i in range(1, len(PERMISSIONS) + 1)]
        + [{"role_id": 2, "permission_id": 1}],
    )


def downgrade() -> None:
    for table in ("caller_roles", "role_permissions", "permissions", "roles"):
        op.drop_table(table)
