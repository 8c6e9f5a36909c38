"""Create the users table and seed the two demo users.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from services.common.passwords import hash_password

revision = "0001"
down_revision = None


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
    )
    op.bulk_insert(users, [
        {"id": 1, "email": "admin@test.com", "password_hash": hash_password("admin")},
        {"id": 2, "email": "user@test.com", "password_hash": hash_password("user")},
    ])


def downgrade() -> None:
    op.drop_table("users")
