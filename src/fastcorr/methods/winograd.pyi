# Type stub of the compiled module winograd.pyx (internal). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

TILE_MULTIPLE: int
BLOCK_CHANNELS: dict[int, int]
GRAD_TAP_MULTIPLE: int

def transform_weights(w: NDArray[Any], up: NDArray[Any], nthreads: int) -> None: ...
def workspace_elements(C: int, Coutp: int, TW: int, band: int, Tqp: int) -> int: ...
def forward(x: NDArray[Any], up: NDArray[Any], out: NDArray[Any], bias: NDArray[Any], C: int, H: int,
            W: int, Cout: int, Ho: int, Wo: int, pt: int, pl: int, band: int, pix: NDArray[Any],
            off: NDArray[Any], ws: NDArray[Any], nthreads: int) -> int: ...
def grad_weight(x: NDArray[Any], go: NDArray[Any], acc: NDArray[Any], C: int, H: int, W: int, Cout: int,
                Ho: int, Wo: int, pt: int, pl: int, band: int, off: NDArray[Any], ws: NDArray[Any],
                nthreads: int) -> int: ...
def untransform_weight_grad(du: NDArray[Any], gw: NDArray[Any], Coutp: int, nthreads: int) -> None: ...
