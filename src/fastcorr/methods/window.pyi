# Type stub of the compiled module window.pyx (internal). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

METHODS: tuple[str, ...]
MIN_SCORES_PER_THREAD: int
FLAT_TOL: float

def scores(x: NDArray[Any], channels: int, h: int, w: int, num: NDArray[Any], tmean: NDArray[Any],
           tvar: NDArray[Any], tsq: NDArray[Any], method: int, num_threads: int) -> None: ...
def moments(x: NDArray[Any], channels: int, h: int, w: int,
            num_threads: int) -> tuple[NDArray[Any], NDArray[Any]]: ...
def finish_block(x: NDArray[Any], h: int, w: int, src: NDArray[Any], out: NDArray[Any], row0: int, col0: int,
                 B1: int, tmean: float, tvar: float, tsq: float, method: int) -> None: ...
