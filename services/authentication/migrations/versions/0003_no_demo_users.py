"""Remove the demo users that 0001 once seeded with known passwords. Where an environment wants them, the
SEED_USERS setting makes them again at start-up.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)


def upgrade() -> None:
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String))
    op.execute(
        users.delete().where(sa.and_(users.c.id.in_([1, 2]), users.c.email.in_(["admin@test.com", "user@test.com"])))
    )


def downgrade() -> None:
    pass  # the users come back from SEED_USERS, where wanted
