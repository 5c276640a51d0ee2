# Type stub of the compiled module direct_nd.pyx (internal). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

def correlate_valid(P: NDArray[Any], w: NDArray[Any], out: NDArray[Any], num_threads: int) -> NDArray[Any]: ...
