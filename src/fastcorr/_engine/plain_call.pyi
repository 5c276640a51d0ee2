# Type stub of the compiled module plain_call.pyx (the fast path of plain
# correlate2d / convolve2d calls). Keep in step with the .pyx.
from typing import Any

from numpy.typing import NDArray

PLAIN_FULL_LIMIT: int
PLAIN_LONG_WORK: float

def forget_last_plain_case() -> None: ...
def plain_call(in1: object, in2: object, mode: object, boundary: object, fillvalue: object,
               method: object, num_threads: object, convolve: bool,
               out: object = None) -> NDArray[Any] | None: ...
