"""multisr: multi-frame super-resolution of bursts of photographs (registration, a multi-frame
solve or SRCNN and fusion).

The public API, what a notebook needs (everything else is internal):

- :func:`open_run` opens a run folder that ``multisr run`` wrote: every stage's output, the
  result, the transforms, without re-running anything.
- :func:`load_pipeline` reads a built-in pipeline (``"multiframe"``, ``"presenters"``,
  ``"single"``, ``"bicubic"``) or a pipeline file.
- :func:`run_frames` runs a pipeline on a burst in memory and returns a :class:`Result`.
- :class:`Registration` is one frame's registration against the reference.

The command line is ``multisr`` (:mod:`multisr.cli`).
"""

__all__ = ["open_run", "load_pipeline", "run_frames", "Result", "Registration"]

# where each public name lives; imported on first use, so that ``multisr --help`` and the command
# line's argument errors do not wait for the library (registration, cache, numpy, OpenCV, torch)
_HOMES = {"open_run": "storage.rundir", "load_pipeline": "runs.pipeline", "run_frames": "runs.engine",
          "Result": "runs.engine", "Registration": "registration.burst"}


def __getattr__(name: str):
    if name in _HOMES:
        from importlib import import_module

        return getattr(import_module(f".{_HOMES[name]}", __name__), name)
    raise AttributeError(f"module 'multisr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
