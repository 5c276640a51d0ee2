"""``fastcorr.ndimage`` used as a user would, for a type checker (see use_public_api.py).

Checked (and run) by ``tests/test_typing.py``.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

import fastcorr.ndimage as ndi


def main() -> None:
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    volume = np.ones((4, 5, 6))
    weights = np.ones((3, 3), dtype=np.float32)
    y: NDArray[np.float32] = ndi.correlate(image, weights, mode="mirror", origin=(0, 1), method="direct",
                                           num_threads=1)
    v = ndi.convolve(volume, np.ones((2, 3)), axes=(1, 2), mode="grid-wrap", cval=0.0)
    g = ndi.gaussian_filter(volume, (1.0, 2.0, 0.5), order=(0, 1, 0), mode=["nearest", "wrap", "reflect"],
                            radius=2, num_threads=2)
    u = ndi.uniform_filter(image, 3, output=np.float64, axes=0)
    s = ndi.sobel(image, axis=0, output=np.empty((8, 8), np.float32))
    lap = ndi.laplace(image, mode="constant", cval=1.0)
    one = ndi.correlate1d(image, [1.0, 2.0], axis=1, origin=-1) + ndi.convolve1d(image, [1.0, -1.0])
    gx = ndi.gaussian_filter1d(image, 1.5, order=1) + ndi.uniform_filter1d(image, 4) + ndi.prewitt(image)
    assert y.dtype == np.float32 and v.shape == g.shape == (4, 5, 6)
    assert u.dtype == np.float64 and s.shape == lap.shape == one.shape == gx.shape == (8, 8)
    try:
        ndi.correlate(image, weights, mode="edge")  # type: ignore[arg-type]
    except ndi.NdimageArgumentError as exc:
        assert isinstance(exc, ValueError) and isinstance(exc, RuntimeError)


if __name__ == "__main__":
    main()
