# Type stub of the compiled module im2col.pyx (internal Python-level names;
# the public C-level API is im2col.pxd). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

def im2col_into(x: NDArray[Any], cols: NDArray[Any], C: int, H: int, W: int, kh: int, kw: int, sw: int,
                Ho: int, Wo: int, ridx: NDArray[Any], cidx: NDArray[Any], crange: NDArray[Any], fill: Any,
                nthreads: int) -> None: ...
def col2im_into(cols: NDArray[Any], x: NDArray[Any], C: int, H: int, W: int, kh: int, kw: int, sw: int,
                Ho: int, Wo: int, ridx: NDArray[Any], cidx: NDArray[Any], crange: NDArray[Any],
                nthreads: int) -> None: ...
def forward(x: NDArray[Any], w: NDArray[Any], out: NDArray[Any], bias: NDArray[Any], ws: NDArray[Any],
            groups: int, C: int, H: int, W: int, kh: int, kw: int, sw: int, Ho: int, Wo: int,
            ridx: NDArray[Any], cidx: NDArray[Any], crange: NDArray[Any], fill: Any, pointwise: bool,
            pt: int, nthreads: int, outer: bool) -> None: ...
def grad_weight(x: NDArray[Any], go: NDArray[Any], acc: NDArray[Any], ws: NDArray[Any], groups: int,
                C: int, H: int, W: int, kh: int, kw: int, sw: int, Ho: int, Wo: int, ridx: NDArray[Any],
                cidx: NDArray[Any], crange: NDArray[Any], fill: Any, pointwise: bool, pt: int,
                nthreads: int, outer: bool) -> None: ...
def grad_input(w: NDArray[Any], go: NDArray[Any], gx: NDArray[Any], ws: NDArray[Any], groups: int,
               C: int, H: int, W: int, kh: int, kw: int, sw: int, Ho: int, Wo: int, ridx: NDArray[Any],
               cidx: NDArray[Any], crange: NDArray[Any], pointwise: bool, pt: int, nthreads: int,
               mode: int) -> None: ...
def gemm_nt_ksplit(a: NDArray[Any], b: NDArray[Any], acc: NDArray[Any], nthreads: int) -> None: ...
def pointwise_backward(x: NDArray[Any], go: NDArray[Any], w: NDArray[Any], gx: NDArray[Any],
                       grad_bias: NDArray[Any], acc: NDArray[Any], buf: NDArray[Any], nthreads: int) -> None: ...
def set_pw_private_wt(on: bool) -> None: ...
