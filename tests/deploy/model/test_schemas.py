"""Schema revisions as the build reads them from the revision files, and what `diff` says an `up` migrates."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.model.schemas import (
    Schema,
    Step,
    pending,
    plan_rollback,
    read_schemas,
    read_step,
    schemas_from_dict,
    schemas_to_dict,
)
from tests.infra import ROOT

CONTRACT = '''"""Every person has a nickname.

Revision ID: 0002
"""

revision = "0002"
down_revision = "0001"
compatibility = "contract"


def upgrade() -> None: ...


def downgrade() -> None: ...
'''


def test_the_checkouts_schemas_are_read_from_its_revision_files() -> None:
    schemas = read_schemas(ROOT)
    assert sorted(schemas) == ["authentication", "authorisation", "person", "session"]
    authentication = schemas["authentication"]
    assert [s.revision for s in authentication.steps] == ["0001", "0002", "0003", "0004", "0005"]
    assert authentication.head == "0005" and authentication.works_from == "0004"  # 0004 contract, 0005 expand
    assert authentication.steps[1].description.startswith("Create the login_failures table")
    assert schemas_from_dict(schemas_to_dict(schemas)) == schemas


def test_a_contract_step_moves_the_range_and_diff_names_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "services" / "person", tmp_path / "services" / "person")
    (tmp_path / "services" / "person" / "migrations" / "versions" / "0002_nickname.py").write_text(CONTRACT)
    before, after = read_schemas(ROOT), read_schemas(tmp_path, ("person",))
    person = after["person"]
    assert person.head == "0002" and person.works_from == "0002"  # code with head 0001 fails on it
    lines = pending(before, after)
    assert lines == [
        "migration person 0002 (contract): Every person has a nickname.; contract step: the previous release's "
        "code fails on it, and rolling back across it needs its downgrade or a backup"
    ]
    assert pending(after, after) == []


def test_steps_are_ordered_by_their_down_revisions() -> None:
    steps = (Step("c", "b", "expand"), Step("a", None, "expand"), Step("b", "a", "contract"))
    schema = Schema(tuple(sorted(steps, key=lambda s: s.revision)))
    assert schema.after("a") == (Step("b", "a", "contract"), Step("c", "b", "expand"))
    assert schema.after(None) == schema.steps and schema.after("zz") == ()
    assert schema.works_from == "b"


def test_a_rollback_keeps_an_expanded_schema_and_downgrades_past_a_contract_step() -> None:
    a = {"person": Schema((Step("0001", None, "expand"),))}
    b = {"person": Schema((*a["person"].steps, Step("0002", "0001", "expand", "Persons get a nickname.")))}
    c = {"person": Schema((*b["person"].steps, Step("0003", "0002", "contract", "Nicknames required.")))}
    [keep] = plan_rollback(b, a, "A")
    assert (keep.action, keep.revision) == ("keep", None)
    assert keep.line == "schema of person: 0002 works with the code of A (head 0001; expand steps 0002 only): no change"
    [down] = plan_rollback(c, b, "B")
    assert (down.action, down.revision) == ("downgrade", "0002")
    assert down.line == (
        "schema of person: downgrading 0003 -> 0002 with the running image first (0003 (contract): Nicknames required.)"
    )
    [back] = plan_rollback(c, a, "A")  # down past the contract step only: A's code works with 0002 (expand)
    assert (back.action, back.revision) == ("downgrade", "0002") and back.line == down.line
    d = {"person": Schema((*c["person"].steps, Step("0004", "0003", "expand"), Step("0005", "0004", "contract")))}
    [newest] = plan_rollback(d, a, "A")  # the newest step is undone first, down to before the oldest contract
    assert newest.revision == "0002" and "(0005 (contract); 0004 (expand); 0003 (contract): Nicknames" in newest.line
    [forward] = plan_rollback(a, c, "C")
    assert forward.action == "forward"
    other = {"person": Schema((Step("0001", None, "expand"), Step("0002x", "0001", "expand")))}
    assert plan_rollback(other, c, "C")[0].action == "impossible"
    assert plan_rollback(c, c, "C") == []


def test_a_restore_is_planned_when_asked_for_or_where_no_downgrade_leads_back() -> None:
    a = {"person": Schema((Step("0001", None, "expand"),))}
    c = {"person": Schema((*a["person"].steps, Step("0002", "0001", "expand"), Step("0003", "0002", "contract")))}
    [restore] = plan_rollback(c, a, "A", restore=True)
    assert (restore.action, restore.revision) == ("restore", "0001")
    assert restore.line == (
        "schema of person: restoring the copy of its database kept before it migrated from 0001 "
        "(now at 0003; rows written since are lost)"
    )
    other = {"person": Schema((Step("0001", None, "expand"), Step("0002x", "0001", "expand")))}
    [elsewhere] = plan_rollback(other, c, "C", restore=True)
    assert (elsewhere.action, elsewhere.revision) == ("restore", "0003")
    assert plan_rollback(a, c, "C", restore=True)[0].action == "forward"  # nothing to put back: C migrates


def test_a_downgrade_names_what_it_drops(tmp_path: Path) -> None:
    from tests.services.test_migrations import EXPAND_STEP

    (tmp_path / "0002.py").write_text(EXPAND_STEP)
    assert read_step(tmp_path / "0002.py").drops == ("persons.nickname",)
    (tmp_path / "0003.py").write_text(
        'revision = "0003"\ndown_revision = "0002"\ncompatibility = "contract"\n\n\ndef downgrade():\n'
        '    op.drop_table("nicknames")\n    op.drop_column("persons", "alias")\n'
    )
    step = read_step(tmp_path / "0003.py")
    assert step.drops == ("nicknames", "persons.alias")
    a = {"person": Schema((Step("0001", None, "expand"),))}
    c = {"person": Schema((*a["person"].steps, read_step(tmp_path / "0002.py"), step))}
    [down] = plan_rollback(c, a, "A")
    assert down.line.endswith("; this drops nicknames, persons.alias and its data")  # 0002's column stays
    assert schemas_from_dict(schemas_to_dict(c)) == c
