"""Create the login_failures table: failed logins per account, counted in the database that every
replica shares.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("email_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
