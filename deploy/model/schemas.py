"""Each service's schema as its image carries it: the migration head, every step with its expand/contract mark,
and the range of heads whose code works on the schema. Read from the revision files the build bakes into the
images (parsed, never run), kept in the build record and each release, compared by `diff`.

Marks (services/common/schema.py): `expand` keeps the previous release's code working; `contract` does not.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

MIGRATIONS = "services/{name}/migrations/versions"
SERVICES_WITH_DATA = ("authentication", "authorisation", "person", "session")


@dataclass(frozen=True)
class Step:
    revision: str
    down_revision: str | None
    compatibility: str  # expand | contract | "" (undeclared: counted as contract)
    description: str = ""
    drops: tuple[str, ...] = ()  # what its downgrade drops: "table.column" or "table"

    def line(self) -> str:
        return f"{self.revision} ({self.compatibility or 'unmarked'}): {self.description}".rstrip(": ")


@dataclass(frozen=True)
class Schema:
    """One service's migrations, oldest first."""

    steps: tuple[Step, ...]

    @property
    def head(self) -> str | None:
        return self.steps[-1].revision if self.steps else None

    @property
    def works_from(self) -> str | None:
        """The oldest head whose code works on this schema: the revision before the newest contract step
        (code older than a contract step fails on it), or the first revision."""
        oldest = self.steps[0].revision if self.steps else None
        for step in reversed(self.steps):
            if step.compatibility != "expand":
                return step.revision
        return oldest

    def after(self, revision: str | None) -> tuple[Step, ...]:
        """The steps an upgrade from `revision` runs (all of them from None; none if `revision` is unknown)."""
        revisions = [step.revision for step in self.steps]
        if revision is None:
            return self.steps
        if revision not in revisions:
            return ()
        return self.steps[revisions.index(revision) + 1 :]

    def to_dict(self) -> dict:
        return {
            "head": self.head,
            "works_from": self.works_from,
            "steps": [
                {
                    "revision": s.revision,
                    "down_revision": s.down_revision,
                    "compatibility": s.compatibility,
                    "description": s.description,
                    "drops": list(s.drops),
                }
                for s in self.steps
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Schema:
        return cls(tuple(Step(**{**step, "drops": tuple(step.get("drops", ()))}) for step in data["steps"]))


Schemas = Mapping[str, Schema]


def schemas_to_dict(schemas: Schemas) -> dict:
    return {name: schema.to_dict() for name, schema in sorted(schemas.items())}


def schemas_from_dict(data: Mapping | None) -> Schemas:
    return MappingProxyType({name: Schema.from_dict(value) for name, value in (data or {}).items()})


def read_schemas(
    source: Path, names: Sequence[str] = ("authentication", "authorisation", "person", "session")
) -> Schemas:
    """Each service's schema from the revision files under `source` (the build's checkout)."""
    found = {}
    for name in names:
        directory = source / MIGRATIONS.format(name=name)
        if directory.is_dir():
            found[name] = Schema(ordered([read_step(path) for path in sorted(directory.glob("*.py"))]))
    return MappingProxyType(found)


def read_step(path: Path) -> Step:
    """A revision file's `revision`, `down_revision`, `compatibility` and first docstring line."""
    module = ast.parse(path.read_text(), str(path))
    values: dict[str, object] = {}
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    doc = (ast.get_docstring(module) or "").strip().splitlines()
    down = values.get("down_revision")
    mark = values.get("compatibility")
    downgrade = next((n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade"), None)
    return Step(
        revision=str(values.get("revision", path.stem)),
        down_revision=down if isinstance(down, str) else None,
        compatibility=mark if isinstance(mark, str) else "",
        description=doc[0] if doc else "",
        drops=dropped(downgrade) if downgrade else (),
    )


def dropped(function: ast.FunctionDef) -> tuple[str, ...]:
    """What a downgrade drops, read from its Alembic calls: op.drop_table("t"), op.drop_column("t", "c"), and
    drop_column("c") on a `with op.batch_alter_table("t") as batch` (the only forms the services' scripts use)."""
    tables: dict[str, str] = {}  # a batch's name -> its table
    found: list[str] = []
    for node in ast.walk(function):
        if isinstance(node, ast.With):
            for item in node.items:
                call, name = item.context_expr, item.optional_vars
                if isinstance(call, ast.Call) and isinstance(name, ast.Name) and called(call) == "batch_alter_table":
                    tables[name.id] = literal(call.args[0]) if call.args else "?"
        if not isinstance(node, ast.Call) or called(node) not in ("drop_table", "drop_column"):
            continue
        args = [literal(arg) for arg in node.args]
        owner = (
            node.func.value.id if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) else ""
        )
        if called(node) == "drop_table" and args:
            found.append(args[0])
        elif owner in tables and args:
            found.append(f"{tables[owner]}.{args[0]}")
        elif len(args) >= 2:
            found.append(f"{args[0]}.{args[1]}")
    return tuple(found)


def called(call: ast.Call) -> str:
    return (
        call.func.attr
        if isinstance(call.func, ast.Attribute)
        else call.func.id
        if isinstance(call.func, ast.Name)
        else ""
    )


def literal(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"


def ordered(steps: Sequence[Step]) -> tuple[Step, ...]:
    """The steps from the first (no down_revision) to the head, following down_revision."""
    following = {step.down_revision: step for step in steps}
    chain: list[Step] = []
    step = following.get(None)
    while step is not None and len(chain) <= len(steps):
        chain.append(step)
        step = following.get(step.revision)
    return tuple(chain)


def pending(before: Schemas, after: Schemas) -> list[str]:
    """One line per migration an `up` from `before` to `after` runs, contract steps named as such."""
    lines = []
    for name, schema in sorted(after.items()):
        old = before.get(name)
        for step in schema.after(old.head) if old else schema.steps:
            warning = "" if step.compatibility == "expand" else "; contract step: the previous release's code"
            warning += " fails on it, and rolling back across it needs its downgrade or a backup" if warning else ""
            lines.append(f"migration {name} {step.line()}{warning}")
    return lines


def heads(schemas: Schemas) -> str:
    """`authentication 0003, person 0002, ...` for a table cell."""
    return ", ".join(f"{name} {schema.head}" for name, schema in sorted(schemas.items())) or "-"


@dataclass(frozen=True)
class Move:
    """What a rollback does to one service's schema, said before anything is applied."""

    service: str
    action: str  # keep | forward | downgrade | restore | impossible
    line: str
    revision: str | None = None  # downgrade: the revision to go down to; restore: the one the copy was taken at


def plan_rollback(running: Schemas, wanted: Schemas, version: str, restore: bool = False) -> list[Move]:
    """For each service: keep the schema (the wanted release's code works with it), let the wanted release
    migrate forward at start-up, downgrade (with the running, newer image) only past the contract steps, or
    restore the copy kept before the migration from the wanted head: asked for (`restore`), or where no
    downgrade leads back."""
    moves = []
    for name, now in sorted(running.items()):
        target = wanted.get(name)
        if target is None or now.head == target.head:
            continue
        restoring = (
            f"schema of {name}: restoring the copy of its database kept before it migrated from {target.head} "
            f"(now at {now.head}; rows written since are lost)"
        )
        revisions = [step.revision for step in now.steps]
        if target.head not in revisions:
            if now.head in [step.revision for step in target.steps]:
                moves.append(Move(name, "forward", f"schema of {name}: release {version} migrates it at start-up"))
            elif restore:
                moves.append(Move(name, "restore", restoring, target.head))
            else:
                line = f"schema of {name}: at {now.head}, and release {version} (head {target.head}) has no way there"
                moves.append(Move(name, "impossible", line))
            continue
        if restore:
            moves.append(Move(name, "restore", restoring, target.head))
            continue
        ahead = now.after(target.head)
        contracts = [step for step in ahead if step.compatibility != "expand"]
        if not contracts:
            line = (
                f"schema of {name}: {now.head} works with the code of {version} (head {target.head}; "
                f"expand steps {', '.join(s.revision for s in ahead)} only): no change"
            )
            moves.append(Move(name, "keep", line))
            continue
        # down past the oldest contract step only: the expand steps before it keep their columns and rows
        down_to = contracts[0].down_revision or target.head
        undone = [step for step in reversed(ahead) if step in now.after(down_to)]
        drops = [drop for step in undone for drop in step.drops]
        line = (
            f"schema of {name}: downgrading {now.head} -> {down_to} with the running image first "
            f"({'; '.join(step.line() for step in undone)})"
        )
        if drops:
            line += f"; this drops {', '.join(drops)} and its data"
        moves.append(Move(name, "downgrade", line, down_to))
    return moves
