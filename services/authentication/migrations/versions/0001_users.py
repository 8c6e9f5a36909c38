"""Create the users table. (It used to seed two demo users with known passwords; users now come from the
SEED_USERS setting, services/common/seed.py, and 0003 removes them where this once made them.)

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("users")
