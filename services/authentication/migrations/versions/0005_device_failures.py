"""Failed logins of browsers with a device cookie, counted per (account, device) apart from every other client's
(services/authentication/devices.py, lockout.py).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
compatibility = "expand"  # a new table (services/common/schema.py)


def upgrade() -> None:
    op.create_table(
        "device_failures",
        sa.Column("account_hash", sa.String(64), primary_key=True),
        sa.Column("device_hash", sa.String(64), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", sa.DateTime, nullable=False),
        sa.Column("last_failure_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_failures")
