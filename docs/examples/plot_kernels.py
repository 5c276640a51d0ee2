"""
Filtering with fastcorr.kernels, and a filter bank as one conv2d
================================================================

:mod:`fastcorr.kernels` builds the classic small kernels: derivatives
(Sobel, Scharr, Prewitt, finite differences, Laplacian) and smoothing
(box, Gaussian). They are written for correlation, so they go straight to
:func:`fastcorr.correlate2d`, or, stacked, into the weight of one
:func:`fastcorr.conv2d` call that applies them all.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastcorr
from fastcorr import kernels

# %%
# A synthetic image
# -----------------
#
# A dark 192x192 image with a bright disc, a grey square and a thin diagonal
# bar, plus a little noise.

rng = np.random.default_rng(0)
n = 192
r, c = np.mgrid[0:n, 0:n].astype(np.float32)
image = np.zeros((n, n), np.float32)
image[(r - 70) ** 2 + (c - 65) ** 2 < 40**2] = 1.0
image[110:170, 100:170] = 0.6
image[np.abs(r - (n - 1 - c)) < 2.5] = 0.85
image += 0.08 * rng.standard_normal((n, n)).astype(np.float32)

# %%
# Smoothing and derivatives
# -------------------------
#
# ``boundary='symm'`` mirrors the image at its edges, as
# ``scipy.ndimage``'s default does, so the edges of the picture do not show
# as steps. ``kernels.sobel(1)`` differentiates along the columns (left to
# right, x) and ``kernels.sobel(0)`` along the rows (top to bottom, y); both
# are signed so that brightness increasing along the axis gives a positive
# response. The gradient magnitude is large on every outline whatever its
# direction. The Sobel filters are taken of the Gaussian-smoothed image,
# which keeps the noise from dominating them.

blur = fastcorr.correlate2d(image, kernels.gaussian(2.0), "same", "symm")
box = fastcorr.correlate2d(image, kernels.box(9) / 81, "same", "symm")
gx = fastcorr.correlate2d(blur, kernels.sobel(1), "same", "symm")
gy = fastcorr.correlate2d(blur, kernels.sobel(0), "same", "symm")
magnitude = np.hypot(gx, gy)
# gaussian(sigma) has radius int(4 sigma + 0.5), as scipy.ndimage.gaussian_filter
print("gaussian(2.0):", kernels.gaussian(2.0).shape)

panels = [
    (image, "image", "gray"),
    (blur, "gaussian(2.0)", "gray"),
    (box, "box(9) / 81", "gray"),
    (gx, "sobel(1) of the blur: d/dx", "RdBu_r"),
    (gy, "sobel(0) of the blur: d/dy", "RdBu_r"),
    (magnitude, "gradient magnitude", "magma"),
]
fig, axes = plt.subplots(2, 3, figsize=(9, 6.4))
for ax, (a, title, cmap) in zip(axes.flat, panels):
    if cmap == "RdBu_r":
        lim = np.abs(a).max()
        ax.imshow(a, cmap=cmap, vmin=-lim, vmax=lim)
    else:
        ax.imshow(a, cmap=cmap)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
fig.tight_layout()

# %%
# A filter bank as one layer
# --------------------------
#
# :func:`fastcorr.conv2d` follows ``torch.nn.functional.conv2d``: NCHW
# input, a weight of shape (out_channels, in_channels, kh, kw), padding and
# padding modes. Stacking four 5x5 kernels as four output channels applies
# them in one call: a Gaussian, the two Sobel derivatives of a Gaussian
# (the Sobel kernels correlated with ``gaussian(1.0, radius=1)``, which
# gives a smoothed derivative in one 5x5 kernel) and a Laplacian of the
# same Gaussian. ``padding='same'`` keeps the image's size and
# ``padding_mode='reflect'`` mirrors the image at its edges.

g3 = kernels.gaussian(1.0, radius=1)
bank = np.stack([
    kernels.gaussian(1.0, radius=2),
    fastcorr.correlate2d(kernels.sobel(1), g3, "full"),
    fastcorr.correlate2d(kernels.sobel(0), g3, "full"),
    fastcorr.correlate2d(kernels.laplacian(), g3, "full"),
]).astype(np.float32)
weight = bank[:, None]                                     # (4, 1, 5, 5)
maps = fastcorr.conv2d(image[None, None], weight,
                       padding="same", padding_mode="reflect")
print("weight", weight.shape, "-> output", maps.shape)

# Away from the edges, each output channel is the correlation of the image
# with that channel's kernel.
for ch in range(4):
    inner = fastcorr.correlate2d(image, bank[ch], "valid")
    assert np.allclose(maps[0, ch, 2:-2, 2:-2], inner, atol=1e-4)

names = ["Gaussian", "d/dx (Sobel of Gaussian)", "d/dy (Sobel of Gaussian)",
         "Laplacian of Gaussian"]
fig, axes = plt.subplots(2, 4, figsize=(10, 4.2),
                         gridspec_kw={"height_ratios": [1, 2.6]})
for ch in range(4):
    k, out = bank[ch], maps[0, ch]
    klim = np.abs(k).max()
    axes[0, ch].imshow(k, cmap="RdBu_r", vmin=-klim, vmax=klim)
    axes[0, ch].set_title(f"kernel {ch}: {names[ch]}", fontsize=9)
    lim = np.abs(out).max()
    if ch == 0:
        axes[1, ch].imshow(out, cmap="gray")
    else:
        axes[1, ch].imshow(out, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1, ch].set_title(f"output channel {ch}", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout()
