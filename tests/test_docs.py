"""The README and the manual in docs/: the README stays a front door (under 200 lines), every link
points at a file and a section that exist, and every command they quote still parses: its
subcommand answers --help and every option it names is one of that subcommand's."""
import re
import shlex
from pathlib import Path

import click
import pytest

from conftest import invoke
from multisr.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`]+)`")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def quoted_commands(page: Path) -> list[str]:
    """Every ``multisr ...`` command a page quotes, in code spans and in code blocks."""
    text = page.read_text().replace("\\|", "|")
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S)
    spans = CODE.findall(re.sub(r"```.*?```", "", text, flags=re.S))
    commands = []
    for piece in [*spans, *"\n".join(blocks).replace("&&", "\n").splitlines()]:
        for part in re.split(r"\s+/\s+|&&|;", piece):  # "multisr stages OUT / multisr cache", "a && b"
            part = part.strip()
            if part.startswith("multisr ") or part == "multisr":
                commands.append(part)
    return commands


def test_the_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < 200, len(lines)
    assert lines[0] == "# multisr"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_reaches_a_file_and_a_section(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        reached = (page.parent / path).resolve() if path else page
        assert reached.exists(), f"{page.name}: {target} (no such file)"
        if anchor:
            assert reached.suffix == ".md" and anchor in anchors(reached), f"{page.name}: {target} (no such section)"


def subcommand(words: list[str]) -> tuple[list[str], click.Command]:
    """The longest run of ``words`` that names a (sub)command of the CLI, and that command."""
    path, command = [], cli
    for word in words:
        if isinstance(command, click.Group) and word in command.commands:
            path.append(word)
            command = command.commands[word]
        else:
            break
    return path, command


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_quoted_command_still_parses(page):
    commands = quoted_commands(page)
    if page.name in ("README.md", "running.md", "results.md"):
        assert len(commands) >= 5, page.name  # the parser finds what is there
    helps = {}
    for command in commands:
        words = shlex.split(re.sub(r"[\[\]]", " ", command), posix=False)[1:]
        path, _ = subcommand(words)
        if tuple(path) not in helps:
            result = invoke(*path, "--help")
            assert result.exit_code == 0, f"{page.name}: `{command}`: {result.output}"
            helps[tuple(path)] = result.output
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command):
            assert option in helps[tuple(path)] or option == "--help", f"{page.name}: `{command}`: no {option}"
