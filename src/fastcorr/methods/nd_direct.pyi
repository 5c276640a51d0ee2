# Type stub of the compiled module nd_direct.pyx: its Python-level names
# (internal). Keep in step with the .pyx.
from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

SERVES_COMPLEX: bool
SERVES_INTEGER: bool
COLS: int
GROUP_TAPS: int
MIN_WORK_PER_THREAD: int

def segments(kshape: Sequence[int], xstrides: Sequence[int], group_taps: int = ...) -> tuple[NDArray[Any], ...]: ...
def correlate_region(xr: NDArray[Any], w: NDArray[Any], shape: Sequence[int], num_threads: int,
                     out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def correlate(x: NDArray[Any], w: NDArray[Any], shape: Sequence[int], offsets: Sequence[int],
              boundary: int, fill: Any, num_threads: int) -> NDArray[Any]: ...
def uses_rows3(kshape: Sequence[int], shape: Sequence[int], dtype: Any) -> bool: ...
def correlate_valid(P: NDArray[Any], w: NDArray[Any], out: NDArray[Any], num_threads: int) -> NDArray[Any]: ...
def _set_kara_levels(levels: int) -> None: ...
