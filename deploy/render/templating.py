"""The one way k8sdeploy sets up Jinja2: strict about undefined values, and its failures located."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.model.cache import cache_home

if TYPE_CHECKING:  # loaded by the first render: commands that render nothing do without it
    import jinja2


@functools.cache
def strict_environment(root: Path) -> jinja2.Environment:
    """Templates under `root`; an undefined variable is an error, block tags leave no blank lines. Compiled
    templates are kept in the cache (keyed by each template's source), so a run renders without compiling."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(existing(cache_home() / "templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def existing(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def failure_location(error: jinja2.TemplateError, root: Path, fallback: str) -> str:
    """`template:line` of the template line that failed (an included file counts), else `fallback`."""
    import jinja2

    if isinstance(error, jinja2.TemplateSyntaxError) and error.name:
        return f"{error.name}:{error.lineno}"
    root_text = str(root.resolve())
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith(root_text):
            return f"{Path(frame.filename).relative_to(root_text)}:{frame.lineno}"
    return fallback
