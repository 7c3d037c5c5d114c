"""The solve's linear operator ``A = S h`` on a torch device: the PSF's blur and the sampling's products.

:class:`BurstOperator` holds one solve's sampling matrix ``S`` and PSF kernel ``h`` where the
solve runs, and gives the products the conjugate gradients need, on ``(H, W)`` float32 tensors
of the solve's grid and ``(P,)`` tensors of the samples. On the CPU they are scipy's sparse
products (through views of the tensors' memory, no copies) and OpenCV's separable filter, the
fastest measured on this project's 2-core machine (torch's CSR product took 3 to 4.6 times
scipy's there); on a GPU, torch's sparse CSR products and convolutions. The solve's other
arithmetic is torch's on both, so its tensors follow the device.
"""
import warnings

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse

from .observation import along_axes

__all__ = ["BurstOperator"]


class BurstOperator:
    """``A = S h`` of one solve: ``matrix`` ``S`` ``(P, H*W)`` CSR (scipy), ``kernel`` ``h``'s
    symmetric 1-D kernel (HR pixels; or a pair, along x and along y), ``shape = (H, W)`` the
    solve's grid, on ``device``.

    ``host_products``: whether the products are scipy's and OpenCV's (by default on the CPU
    only; False on the CPU runs the GPU's torch products there, which tests compare)."""

    def __init__(self, matrix: sparse.csr_matrix, kernel: np.ndarray | tuple, shape: tuple[int, int],
                 device: torch.device, *, host_products: bool | None = None):
        self.shape, self.device = tuple(shape), torch.device(device)
        self._kernels = along_axes(kernel)
        self._host = self.device.type == "cpu" if host_products is None else host_products
        if self._host and self.device.type != "cpu":
            raise ValueError(f"host_products: scipy's products need the CPU, got device {self.device}")
        if self._host:
            self._matrix = matrix
            self._squared = sparse.csr_matrix((matrix.data * matrix.data, matrix.indices, matrix.indptr),
                                              shape=matrix.shape)
            return
        with warnings.catch_warnings():  # torch warns at every sparse CSR tensor that its support is "in beta"
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            rows = torch.repeat_interleave(torch.arange(matrix.shape[0], device=self.device),
                                           torch.from_numpy(np.diff(matrix.indptr).astype(np.int64)).to(self.device))
            columns = torch.from_numpy(matrix.indices.astype(np.int64)).to(self.device)
            data = torch.from_numpy(matrix.data.astype(np.float32)).to(self.device)
            # the matrix is well formed by construction (sampling_matrix): its invariants are not checked
            self._matrix = torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)).to(self.device),
                                                   columns, data, size=matrix.shape, check_invariants=False)
            # S^T as a CSR of its own (its rows sorted by the device), and (S o S)^T on the same indices
            transposed = torch.sparse_coo_tensor(torch.stack([columns, rows]), data, (matrix.shape[1], matrix.shape[0]),
                                                 check_invariants=False)
            self._transposed = transposed.coalesce().to_sparse_csr()
            self._squared_transposed = torch.sparse_csr_tensor(
                self._transposed.crow_indices(), self._transposed.col_indices(), self._transposed.values() ** 2,
                size=self._transposed.shape, check_invariants=False)
        self._kernel_tensors = tuple(torch.from_numpy(k).to(self.device) for k in self._kernels)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """``array`` as a float32 tensor on the operator's device (a view of it on the CPU)."""
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def blur(self, image: torch.Tensor, *, squared: bool = False) -> torch.Tensor:
        """``h * image`` (``h^2`` with ``squared``) along both axes, zeros beyond the border: the
        operator stays its own adjoint."""
        if self._host:
            along_x, along_y = (k**2 if squared else k for k in self._kernels)
            return torch.from_numpy(cv2.sepFilter2D(image.numpy(), cv2.CV_32F, along_x, along_y,
                                                    borderType=cv2.BORDER_CONSTANT))
        along_x, along_y = (k**2 if squared else k for k in self._kernel_tensors)
        out = F.conv2d(image[None, None], along_y.view(1, 1, -1, 1), padding=(along_y.numel() // 2, 0))
        return F.conv2d(out, along_x.view(1, 1, 1, -1), padding=(0, along_x.numel() // 2))[0, 0]

    def sample(self, image: torch.Tensor) -> torch.Tensor:
        """``A image = S (h * image)``: ``(H, W)`` -> ``(P,)``."""
        blurred = self.blur(image).reshape(-1)
        if self._host:
            return torch.from_numpy(self._matrix @ blurred.numpy())
        return self._matrix @ blurred

    def spread(self, values: torch.Tensor, *, squared: bool = False) -> torch.Tensor:
        """``A^T values = h * (S^T values)``: ``(P,)`` -> ``(H, W)``; with ``squared``, ``h^2 * ((S o S)^T
        values)`` (the normal matrix's diagonal without the products of different taps)."""
        if self._host:
            matrix = self._squared if squared else self._matrix
            spread = torch.from_numpy((matrix.T @ values.numpy()).astype(np.float32, copy=False))
        else:
            spread = (self._squared_transposed if squared else self._transposed) @ values
        return self.blur(spread.reshape(self.shape), squared=squared)
