"""Remove the roles that 0001 once gave the demo callers 1 and 2. Where an environment seeds users, the
SEED_USERS setting gives each its role again at start-up.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
compatibility = "expand"  # the previous release's code works on the schema it leaves (services/common/schema.py)


def upgrade() -> None:
    callers = sa.table("caller_roles", sa.column("caller_id", sa.Integer))
    op.execute(callers.delete().where(callers.c.caller_id.in_([1, 2])))


def downgrade() -> None:
    pass  # the roles come back from SEED_USERS, where wanted
