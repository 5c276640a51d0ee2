# Type stub of the compiled module integer.pyx: its Python-level names
# (internal). Keep in step with the .pyx.
from collections.abc import Sequence
from typing import Any

from numpy.typing import DTypeLike, NDArray

SERVES_COMPLEX: bool
SERVES_INTEGER: bool
NATIVE_INTEGER: bool
SERVES_OUT: bool
PORTABLE: bool
NO_AVX512: bool
AVX2: bool
AVX512: bool
MAX_RING_BYTES: int
MIN_WORK_PER_THREAD: int

def lane_bits(dtype: DTypeLike) -> int: ...
def serves(x_shape: Sequence[int], w_shape: Sequence[int], shape: Sequence[int], dtype: DTypeLike,
           separable: bool = False) -> bool: ...
def useful_threads(num_threads: int, work: int, rows: int) -> int: ...
def correlate(x: NDArray[Any], w: NDArray[Any], shape: Sequence[int], offsets: Sequence[int],
              boundary: int, fill: Any, num_threads: int, out: NDArray[Any] | None = None, *,
              portable: bool | None = None) -> NDArray[Any]: ...
def factor(w: NDArray[Any]) -> tuple[list[int], list[int]] | None: ...
def correlate_separable(x: NDArray[Any], w: NDArray[Any], shape: Sequence[int], offsets: Sequence[int],
                        boundary: int, fill: Any, num_threads: int, out: NDArray[Any] | None = None, *,
                        portable: bool | None = None) -> NDArray[Any]: ...
def plain(x: NDArray[Any], w: NDArray[Any], Ho: int, Wo: int, off0: int, off1: int, convolve: bool,
          num_threads: int, separable: bool) -> NDArray[Any]: ...
