# Type stub of the compiled module separable.pyx (internal Python-level
# names; the public C-level API is separable.pxd). Keep in step with the .pyx.
from collections.abc import Sequence
from typing import Any

from numpy.typing import DTypeLike, NDArray

SERVES_COMPLEX: bool
SERVES_INTEGER: bool
SERVES_OUT: bool
MAX_RANK: int
BAND_BYTES: int

def decompose(w: Any, dtype: DTypeLike | None = None) -> list[tuple[NDArray[Any], NDArray[Any]]]: ...
def rank(w: Any, dtype: DTypeLike | None = None) -> int: ...
def correlate(x: NDArray[Any], w: NDArray[Any], shape: Sequence[int], offsets: Sequence[int],
              boundary: int, fill: Any, num_threads: int, out: NDArray[Any] | None = None) -> NDArray[Any]: ...
def _set_col3(enabled: int) -> None: ...
def _set_spread_bands(enabled: int) -> None: ...
