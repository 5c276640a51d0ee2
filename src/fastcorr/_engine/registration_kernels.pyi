# Type stub of the compiled module registration_kernels.pyx (the cross-power
# spectrum and the peak search of phase_cross_correlation). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

def cross_power(out: NDArray[Any], a: NDArray[Any], b: NDArray[Any], phase: bool, floor: float) -> None: ...
def absmax(x: NDArray[Any]) -> int: ...
