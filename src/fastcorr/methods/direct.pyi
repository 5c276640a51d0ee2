# Type stub of the compiled module direct.pyx: its Python-level names
# (internal; the public C-level API is direct.pxd). Keep in step with the .pyx.
from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

VECTOR_BYTES: int
BLOCK_VECTORS: int
OPENMP: bool
SIMD: str
BUILD_SYSTEM: str
COMPILER: str
PAD_SMALL_ELEMENTS: int
SERVES_COMPLEX: bool
SERVES_INTEGER: bool
SERVES_OUT: bool
SCALE_BELOW: int
SCALE_KERNEL: bool
HUGE_ALIGN_MIN: int
HUGE_PAGE: int
ALIGN_OUTPUT: bool
POOL_MIN_BYTES: int
POOL_MAX_BYTES: int
POOL_BLOCKS: int
POOL_IDLE_BYTES: int
RECYCLE_OUTPUTS: bool
MIN_WORK_PER_THREAD: int

def correlate_into(x: NDArray[Any], w: NDArray[Any], out: NDArray[Any], off0: int, off1: int,
                   boundary: int, fill: Any, num_threads: int) -> None: ...
def correlate(x: NDArray[Any], w: NDArray[Any], shape: Sequence[int], offsets: Sequence[int],
              boundary: int, fill: Any, num_threads: int, out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def useful_threads(num_threads: int, work: int, rows: int) -> int: ...
def scale_into(x: NDArray[Any], c: Any, out: NDArray[Any], num_threads: int) -> None: ...
def fresh_output(shape: Sequence[int], dtype: Any, pool_min: int | None = None) -> NDArray[Any]: ...
def idle_outputs() -> tuple[int, int]: ...
def release_outputs() -> int: ...
def discard(a: Any) -> bool: ...
def recycles(nbytes: float) -> bool: ...
