# Type stub of the compiled module fft_kernels.pyx (internal). Keep in step with the .pyx.
from typing import Any

from numpy.typing import ArrayLike, NDArray

def planar_cgemm(ar: NDArray[Any], ai: NDArray[Any], br: NDArray[Any], bi: NDArray[Any],
                 yr: NDArray[Any], yi: NDArray[Any], num_threads: int) -> None: ...
def spectral_rows(x: NDArray[Any], a: NDArray[Any], b: NDArray[Any], out: NDArray[Any], off: int,
                  num_threads: int, portable: bool = False) -> None: ...
def all_finite(a: ArrayLike) -> bool: ...
