"""``fastcorr.dask`` used as a user would, for a type checker (see use_public_api.py).

Checked (and run) by ``tests/test_typing.py`` when dask is installed.
"""
from __future__ import annotations

import dask.array as da
import numpy as np
from numpy.typing import NDArray

import fastcorr.dask


def main() -> None:
    image = da.ones((16, 16), chunks=8).cumsum(axis=1)  # columns 1, 2, ..., 16
    pixels = np.ones((16, 16)).cumsum(axis=1)
    kernel = np.ones((3, 3))
    same: da.Array = fastcorr.dask.correlate2d(image, kernel, mode="same", boundary="symm", chunks="input")
    full: da.Array = fastcorr.dask.convolve2d(np.ones((8, 8)), kernel, "full", "wrap", method="direct")
    layers: da.Array = fastcorr.dask.conv2d(da.ones((2, 3, 16, 16), chunks=(1, 3, 8, 8)), np.ones((4, 3, 3, 3)),
                                            None, stride=1, padding="same", padding_mode="replicate", num_threads=1)
    matched: da.Array = fastcorr.dask.match_template(image, pixels[2:6, 3:8], "ccorr_normed", pad_input=True,
                                                     mode="edge", chunks="seams", num_threads=1)
    assert same.shape == (16, 16) and full.shape == (10, 10) and layers.shape == (2, 4, 16, 16)
    assert matched.shape == (16, 16)
    assert np.allclose(np.asarray(same), fastcorr.correlate2d(pixels, kernel, "same", "symm"))
    holes = da.where(image % 5 == 0, np.nan, image)
    smooth: da.Array = fastcorr.dask.normalized_convolution(holes, kernel, boundary="extend", chunks="input")
    filled, how_sure = fastcorr.dask.normalized_convolution(holes, kernel, da.isfinite(holes), fill_value=np.nan,
                                                            return_certainty=True, num_threads=1)
    assert smooth.shape == filled.shape == how_sure.shape == (16, 16)
    assert not np.isnan(np.asarray(smooth)).any()
    volume = da.ones((6, 7, 8), chunks=4)
    nd_same: da.Array = fastcorr.dask.correlate(volume, np.ones((3, 3, 3)), "same", "direct", num_threads=1)
    nd_full: da.Array = fastcorr.dask.convolve(volume, np.ones((2, 2, 2)))
    assert nd_same.shape == (6, 7, 8) and nd_full.shape == (7, 8, 9)
    frames = np.random.default_rng(1).random((2, 64, 64))
    x, y, u, v, s2n = fastcorr.dask.piv(frames, np.roll(frames, 1, axis=2), 32, 16, sig2noise_method="peak2mean",
                                        num_threads=1)
    centres: NDArray[np.float64] = x
    lazy: da.Array = u
    assert centres.shape == (3, 3) and lazy.shape == (2, 3, 3) and s2n.shape == v.shape


if __name__ == "__main__":
    main()
