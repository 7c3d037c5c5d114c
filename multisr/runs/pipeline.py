"""Pipeline definitions: which stages run, in which order, with which parameters.

A pipeline file is TOML::

    description = "..."
    [[stages]]
    name = "upscale"      # a stage of multisr.runs.stages.STAGES
    kernel = "matlab"     # parameters; the ones left out take the stage's defaults

Built-in pipelines (``presenters``, ``single``, ``bicubic``, ``multiframe``)
ship in the package ``multisr.pipelines`` (the repository's
``pipelines/`` folder). Every run starts with the ``load`` stage, whose parameters come from
the command line, so files never list it.
"""
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import UserError
from .stages import STAGES, Stage

__all__ = ["Pipeline", "builtin_pipelines", "load_pipeline", "with_overrides"]


@dataclass
class Pipeline:
    """A named list of ``(stage, parameters)`` steps, parameters complete (defaults filled in)."""

    name: str
    description: str
    steps: list[tuple[Stage, dict]]


def builtin_pipelines() -> list[str]:
    """Names of the pipelines that ship with multisr."""
    folder = resources.files("multisr.pipelines")
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_pipeline(name_or_path: str) -> Pipeline:
    """A built-in pipeline by name, or a pipeline file by path; refuses unknown stages and keys,
    and values that their stage's :class:`~multisr.params.Param` does not allow."""
    # a built-in name is a plain word: "../x" or "a/b" never reaches outside the package's folder
    builtin = resources.files("multisr.pipelines") / f"{name_or_path}.toml"
    if re.fullmatch(r"[A-Za-z0-9_-]+", name_or_path) and builtin.is_file():
        source, text, name = f"pipeline {name_or_path!r}", builtin.read_text(), name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(
                f"pipeline: expected one of {', '.join(builtin_pipelines())} or a .toml file, "
                f"got {name_or_path!r} (no such file)"
            )
        try:
            source, text, name = str(path), path.read_text(encoding="utf-8"), path.stem
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"{path}: expected a UTF-8 TOML pipeline file, but it cannot be read ({error})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{source}: expected TOML, {error}")
    unknown = set(data) - {"description", "stages"}
    if unknown:
        raise UserError(f"{source}: unknown key {sorted(unknown)[0]!r}; allowed: description, stages")
    if not isinstance(data.get("stages"), list) or not data["stages"]:
        raise UserError(f"{source}: expected a [[stages]] list with at least one stage")
    allowed_stages = sorted(set(STAGES) - {"load"})
    steps = []
    for index, entry in enumerate(data["stages"]):
        if not isinstance(entry, dict):
            raise UserError(f"{source}: stages[{index}] is {entry!r}; expected a [[stages]] table with a name")
        params = dict(entry)
        stage_name = params.pop("name", None)
        if stage_name not in allowed_stages:
            raise UserError(
                f"{source}: stages[{index}].name is {stage_name!r}; expected one of {', '.join(allowed_stages)}"
            )
        if any(stage.name == stage_name for stage, _ in steps):
            raise UserError(f"{source}: stage {stage_name!r} appears twice; each stage may run once")
        stage = STAGES[stage_name]
        for key, value in params.items():
            if key not in stage.params:
                allowed = ", ".join(stage.params) or "none"
                raise UserError(f"{source}: stage {stage_name!r} has no parameter {key!r}; allowed: {allowed}")
            params[key] = stage.params[key].check(f"{source}: {stage_name}.{key}", value)
        steps.append((stage, {**stage.defaults, **params}))
    available = set(STAGES["load"].writes)
    for stage, _ in steps:
        missing = [artifact for artifact in stage.reads if artifact not in available]
        if missing:
            raise UserError(f"{source}: stage {stage.name!r} needs {missing[0]!r}, which no earlier stage makes")
        available |= set(stage.writes)
    return Pipeline(name, str(data.get("description", "")), steps)


def with_overrides(pipeline: Pipeline, overrides: list[str]) -> Pipeline:
    """``pipeline`` with ``STAGE.PARAM=VALUE`` overrides applied (VALUE as TOML, else a string),
    each checked by its :class:`~multisr.params.Param`."""
    steps = [(stage, dict(params)) for stage, params in pipeline.steps]
    for override in overrides:
        target, sep, text = override.partition("=")
        stage_name, dot, key = target.partition(".")
        if not sep or not dot:
            raise UserError(f"overrides: expected STAGE.PARAM=VALUE, got {override!r}")
        matches = [(stage, params) for stage, params in steps if stage.name == stage_name]
        if not matches:
            names = ", ".join(stage.name for stage, _ in steps)
            raise UserError(f"overrides {override}: pipeline {pipeline.name!r} has no stage {stage_name!r}; it has {names}")
        stage, params = matches[0]
        if key not in stage.params:
            allowed = ", ".join(stage.params) or "none"
            raise UserError(f"overrides {override}: stage {stage_name!r} has no parameter {key!r}; allowed: {allowed}")
        try:
            value = tomllib.loads(f"value = {text}")["value"]
        except tomllib.TOMLDecodeError:
            value = text
        params[key] = stage.params[key].check(f"overrides {stage_name}.{key}", value)
    return Pipeline(pipeline.name, pipeline.description, steps)
