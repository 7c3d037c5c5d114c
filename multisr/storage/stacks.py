"""Stacks of high-resolution frames kept in a ``.npy`` file and read and written in bands of rows.

The one large array of a run is its stack of high-resolution frames: 20 colour 1280x720 frames
at 3x are 2 GB, 10 frames of 4000x3000 are 13 GB. The stages that make and use it (upscale,
srcnn, realign, fuse) hold it as a :class:`Stack` and work through it band by band, so that a
run's memory goes with the band size (:data:`BAND_PIXELS` over all threads) and the number of
frames, not with the frame size. Each read or write maps the file only while it copies its band and closes the
map at once, so the pages it touched stop counting in the process's resident memory (the
operating system keeps them in its file cache or writes them out).

The file is a plain ``.npy``: a notebook opens it with ``np.load(path, mmap_mode="r")``.
"""
from pathlib import Path

import numpy as np

__all__ = ["BAND_PIXELS", "Stack", "band_rows"]

BAND_PIXELS = 1 << 23  # pixels in the bands in flight at once (8 Mpixel: 96 MiB of colour float32)


def band_rows(width: int, *, frames: int = 1, workers: int = 1) -> int:
    """Rows per band of ``frames`` frames of ``width`` pixels when ``workers`` bands are in flight:
    about :data:`BAND_PIXELS` pixels in all, however many threads the machine has."""
    return max(1, BAND_PIXELS // max(1, width * frames * workers))


class Stack:
    """An ``(N, H, W[, C])`` array in the ``.npy`` file ``path``, indexed like a numpy array
    (``stack[k]``, ``stack[a:b, top:bottom]``, ``stack[k, ::4, ::4]``; reading returns a new
    array) and written by slices (``stack[a:b, top:bottom] = values``). Writes to disjoint parts
    from several threads are safe."""

    def __init__(self, path: Path):
        self.path = Path(path)
        # the header is read once: the bands map the data at its offset without parsing it again
        # (numpy parses a header with ast.literal_eval, which CPython 3.11 before 3.11.8 cannot
        # run in several threads at once: "AST constructor recursion depth mismatch")
        with open(self.path, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            self.shape, fortran_order, self.dtype = read_header(handle)
            self.offset = handle.tell()
        if fortran_order:
            raise ValueError(f"{self.path}: expected a C-ordered array, found a Fortran-ordered one")

    @classmethod
    def create(cls, path: Path, shape: tuple[int, ...], dtype=np.float32) -> "Stack":
        """A new stack of ``shape`` in ``path`` (its contents zero until written)."""
        mapped = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape))
        del mapped
        return cls(path)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _mapped(self, mode: str) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, offset=self.offset, shape=self.shape)

    def __getitem__(self, key) -> np.ndarray:
        mapped = self._mapped("r")
        try:
            return np.array(mapped[key])
        finally:
            del mapped

    def __setitem__(self, key, values) -> None:
        mapped = self._mapped("r+")
        try:
            mapped[key] = values
            mapped.flush()
        finally:
            del mapped

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = np.load(self.path)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        return f"Stack({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"
