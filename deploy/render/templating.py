"""The one way k8sdeploy sets up Jinja2: strict about undefined values, and its failures located."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path

import jinja2


@functools.cache
def strict_environment(root: Path) -> jinja2.Environment:
    """Templates under `root`; an undefined variable is an error, block tags leave no blank lines."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def failure_location(error: jinja2.TemplateError, root: Path, fallback: str) -> str:
    """`template:line` of the template line that failed (an included file counts), else `fallback`."""
    if isinstance(error, jinja2.TemplateSyntaxError) and error.name:
        return f"{error.name}:{error.lineno}"
    root_text = str(root.resolve())
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.filename.startswith(root_text):
            return f"{Path(frame.filename).relative_to(root_text)}:{frame.lineno}"
    return fallback
