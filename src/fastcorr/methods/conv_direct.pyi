# Type stub of the compiled module conv_direct.pyx (internal). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

CONV_BLOCK_CHANNELS: int
CV_BLOCK_CHANNELS: dict[int, int]
CV_BLOCK_PIXELS: int
CV_CHUNK_PIXELS: int
GW_BLOCK_TAPS: int

def forward(x: NDArray[Any], w: NDArray[Any], out: NDArray[Any], bias: NDArray[Any], groups: int, C: int,
            H: int, W: int, kh: int, kw: int, sw: int, Ho: int, Wo: int, ridx: NDArray[Any],
            cidx: NDArray[Any], crange: NDArray[Any], nthreads: int, unit_columns: bool = False,
            unit_rows: bool = False) -> None: ...
def forward_blocked(x: NDArray[Any], wp: NDArray[Any], out: NDArray[Any], bias: NDArray[Any],
                    dims: NDArray[Any], rowsrc: NDArray[Any], colsrc: NDArray[Any], vrange: NDArray[Any],
                    phases: NDArray[Any], off: NDArray[Any], pix: NDArray[Any], ws: NDArray[Any],
                    nthreads: int) -> None: ...
def grad_weight_blocked(x: NDArray[Any], go: NDArray[Any], acc: NDArray[Any], dims: NDArray[Any],
                        rowsrc: NDArray[Any], colsrc: NDArray[Any], vrange: NDArray[Any],
                        phases: NDArray[Any], off: NDArray[Any], ws: NDArray[Any], nthreads: int) -> None: ...
def pack_weights(w: NDArray[Any], wp: NDArray[Any], Cog: int, nthreads: int) -> None: ...
def blocked_workspace(dims: NDArray[Any], channels: int, cv: bool, grad_weight: bool = False) -> int: ...

def po_block_channels() -> int: ...
def swap_leading(src: NDArray[Any], dst: NDArray[Any], sums: NDArray[Any], nthreads: int) -> None: ...
def set_prefetch_rows(rows: int) -> None: ...
