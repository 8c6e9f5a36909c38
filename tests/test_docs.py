"""The README stays a five-minute read and the documentation stays true to the code: the README's command table has
a row for every command of `k8sdeploy` (groups expanded: `user add`, `keys rotate`, ...), its exit-code table a row
for every ExitCode, its k8sdeploy.toml example loads, and every relative link of README.md and docs/*.md leads to a
file that exists and, with a #fragment into a Markdown file, to one of its headings. No server, no build."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import cli
from deploy.model.environments import load_environment
from deploy.model.errors import ConfigError, ExitCode
from tests.infra import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 170

# A row of the README's command table names its command in its first cell as `k8sdeploy PATH`; one of the exit-code
# table names its code as `N`.
COMMAND_ROW = re.compile(r"^\|\s*`k8sdeploy ([a-z][a-z -]*)`\s*\|", re.M)
EXIT_CODE_ROW = re.compile(r"^\|\s*`(\d+)`\s*\|", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[str]:
    """Every command a user can type, groups expanded to their subcommands: `up`, ..., `user add`, `keys rotate`."""
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from command_paths(sub, (*path, name))
    else:
        yield " ".join(path)


def section(text: str, title: str) -> str:
    """The body of the `## title` section of a Markdown text, up to the next heading of level 2 or less."""
    match = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section `## {title}`"
    return match.group(1)


def without_code(text: str) -> str:
    """The text with its fenced code blocks and code spans blanked out, so that a link shown as code is no link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower-case, punctuation (backticks, colons, ...) dropped, spaces to
    dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """The fragments of a Markdown file's headings, a repeated one numbered as GitHub numbers it (-1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", markdown.read_text())):
        anchor = github_anchor(title)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(markdown: Path) -> Iterator[str]:
    for target in LINK.findall(without_code(markdown.read_text())):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: are not checked here
            yield target


def broken(markdown: Path, target: str) -> str:
    """Why the link `target` in `markdown` leads nowhere, or "" when it leads to something that exists."""
    path, _, fragment = target.partition("#")
    destination = (markdown.parent / path).resolve() if path else markdown
    if not destination.exists():
        return f"{target}: no file {destination.relative_to(ROOT) if destination.is_relative_to(ROOT) else destination}"
    if fragment and destination.suffix == ".md" and fragment not in anchors(destination):
        return f"{target}: {destination.relative_to(ROOT)} has no heading whose anchor is #{fragment}"
    return ""


def test_the_readme_is_a_five_minute_read() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines, more than {MAX_README_LINES}: move the detail into a page of docs/ and link it"
    )


def test_the_readme_command_table_has_a_row_for_every_command() -> None:
    commands = set(command_paths(cli.main))
    rows = set(COMMAND_ROW.findall(section(README.read_text(), "Commands")))
    assert commands, "cli.main has no commands"
    missing = sorted(commands - rows)
    assert not missing, "README.md's command table (## Commands) has no row for: " + ", ".join(
        f"| `k8sdeploy {path}` |" for path in missing
    )
    unknown = sorted(rows - commands)
    assert not unknown, "README.md's command table names commands k8sdeploy does not have: " + ", ".join(unknown)


def test_the_readme_exit_code_table_has_a_row_for_every_exit_code() -> None:
    rows = {int(code) for code in EXIT_CODE_ROW.findall(section(README.read_text(), "Exit codes"))}
    missing = sorted(code.value for code in ExitCode if code.value not in rows)
    assert not missing, "README.md's exit-code table (## Exit codes) has no row for: " + ", ".join(
        f"| `{code}` | ({ExitCode(code).name})" for code in missing
    )
    unknown = sorted(rows - {code.value for code in ExitCode})
    assert not unknown, f"README.md's exit-code table has codes ExitCode does not: {unknown}"


def test_the_readme_configuration_example_loads(tmp_path: Path) -> None:
    (example,) = re.findall(r"^```toml\n(.*?)^```", README.read_text(), re.M | re.S)
    config = tmp_path / "k8sdeploy.toml"
    config.write_text(example)
    names = re.findall(r"^\[environments\.([a-z0-9-]+)\]", example, re.M)
    assert names, "README.md's k8sdeploy.toml example has no [environments.NAME] table"
    for name in names:
        try:
            load_environment(name, config)
        except ConfigError as error:
            pytest.fail(f"README.md's k8sdeploy.toml example does not load: {error}")


@pytest.mark.parametrize("markdown", [README, *DOCS], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_somewhere(markdown: Path) -> None:
    problems = list(
        dict.fromkeys(problem for target in relative_links(markdown) if (problem := broken(markdown, target)))
    )
    assert not problems, f"{markdown.relative_to(ROOT)} has broken links:\n  " + "\n  ".join(problems)


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)}
    unlinked = [str(page.relative_to(ROOT)) for page in DOCS if page.resolve() not in linked]
    assert DOCS, "docs/ has no pages"
    assert not unlinked, f"README.md links none of: {', '.join(unlinked)}"


def test_github_anchors_are_made_as_github_makes_them() -> None:
    assert github_anchor("Deploying: `k8sdeploy up`") == "deploying-k8sdeploy-up"
    assert github_anchor("Cold `make demo`: from a fresh clone to the gateway's URL") == (
        "cold-make-demo-from-a-fresh-clone-to-the-gateways-url"
    )
    assert github_anchor("Edit a service, see it served: `k8sdeploy dev`") == (
        "edit-a-service-see-it-served-k8sdeploy-dev"
    )


def listed_parts() -> list[str]:
    """The parts of deploy/ that docs/architecture.md's "What is here" names, in its order (`a.py, b.py` lines
    name two)."""
    block = section((ROOT / "docs" / "architecture.md").read_text(), "What is here")
    names = []
    for line in block.splitlines():
        match = re.match(r"^      (\S.*?)(?:\s{2,}|$)", line)  # deploy/'s entries are indented six spaces
        if match:
            names += [name.strip() for name in match.group(1).split(",")]
    return names


def test_the_architecture_page_names_every_part_of_deploy_in_layer_order() -> None:
    from tests.deploy.test_architecture import layer_of

    actual = {
        f"{path.name}/" if path.is_dir() else path.name
        for path in (ROOT / "deploy").iterdir()
        if path.name not in ("__init__.py", "__pycache__") and (path.is_dir() or path.suffix == ".py")
    }
    listed = listed_parts()
    assert sorted(set(listed)) == sorted(listed), "a part is listed twice"
    assert set(listed) - actual == set(), "docs/architecture.md names parts deploy/ does not have"
    assert actual - set(listed) == set(), "parts of deploy/ that docs/architecture.md does not name"
    modules = [f"deploy.{name.removesuffix('/').removesuffix('.py')}" for name in listed if name != "schemas/"]
    layers = [layer_of(module) for module in modules]
    assert layers == sorted(layers), f"not listed bottom to top (tests/deploy/test_architecture.py LAYERS): {modules}"


def test_adding_a_target_names_files_that_exist_for_every_kind() -> None:
    from deploy.model.environments import TARGET_KINDS

    text = section((ROOT / "docs" / "architecture.md").read_text(), "Adding a target")
    for kind, module in TARGET_KINDS.items():
        package = ROOT / module.rsplit(".", 1)[0].replace(".", "/")
        for name in re.findall(r"`deploy/targets/NAME/([a-z_]+\.py)`", text):
            assert (package / name).exists(), f"{kind}: {package.relative_to(ROOT)}/{name}, named by the page"
    assert "TARGET_KINDS" in text and "deploy/targets/kit.py" in text


def test_the_configuration_page_has_a_row_for_every_key() -> None:
    from deploy.model.environments import Environment
    from deploy.model.kinds import KIND_TABLES

    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    tables = {table.KIND for table in KIND_TABLES}  # each kind's own table, whose keys have their rows
    keys = (set(Environment.model_fields) - {"name"} - tables).union(*(table.model_fields for table in KIND_TABLES))
    assert keys - rows == set(), "keys of k8sdeploy.toml that docs/configuration.md does not describe"
    assert rows - keys == set(), "rows of docs/configuration.md for keys the model does not have"
