"""Progress: plain lines when stderr is not a terminal, a live line per image (rich) when it is."""

from __future__ import annotations

import io

from deploy.output import PlainProgress, RichProgress, progress_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = progress_for(stream)
    assert isinstance(progress, PlainProgress)
    progress.step("person", "application layer")
    progress.close()
    assert stream.getvalue() == "person: application layer\n"


def test_a_line_per_image_on_a_terminal() -> None:
    stream = Terminal()
    progress = progress_for(stream)
    assert isinstance(progress, RichProgress)
    progress.step("person", "application layer")
    progress.step("session", "pushed")
    progress.close()
    assert "person" in stream.getvalue() and "session" in stream.getvalue() and "pushed" in stream.getvalue()

