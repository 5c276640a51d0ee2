# Type stub of the compiled module piv_peaks.pyx (the peaks, sub-pixel fits and
# signal-to-noise ratios of a stack of PIV correlation maps). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

def peaks(corr: NDArray[Any], m0: int, m1: int, subpixel: int, s2n_method: int, width: int, dt: float,
          eps: float, means: NDArray[Any] | None, u: NDArray[Any], v: NDArray[Any],
          s2n: NDArray[Any]) -> None: ...
def cross_spectrum(a: NDArray[Any], b: NDArray[Any], phase: NDArray[Any]) -> None: ...
