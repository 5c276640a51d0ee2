"""
Filling the holes of an image with normalized convolution
=========================================================

A photograph loses 20% of its pixels at random (set to NaN, as a bad pixel
or a masked star would be). A plain convolution cannot smooth it: NaN spreads
to every output the kernel reaches, and replacing the holes by 0 darkens
the image wherever they are. :func:`fastcorr.normalized_convolution` takes
the kernel's weighted mean of the pixels that are there, renormalising the
kernel over them (astropy's ``convolve`` with ``nan_treatment='interpolate'``),
so the holes are filled from their neighbours and the rest of the image is
smoothed as usual.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import cbook

import fastcorr
from fastcorr import kernels

# %%
# An image with 20% of its pixels missing
# ---------------------------------------
#
# Grace Hopper's portrait (it ships with matplotlib), in grey levels in [0, 1].

with cbook.get_sample_data("grace_hopper.jpg") as f:
    rgb = plt.imread(f)
image = rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114] / 255.0

rng = np.random.default_rng(0)
holes = rng.random(image.shape) < 0.20
damaged = image.copy()
damaged[holes] = np.nan
print(f"{image.shape[0]}x{image.shape[1]} image, {holes.mean():.1%} of its pixels missing")

# %%
# Three ways to smooth it
# -----------------------
#
# A Gaussian kernel of sigma 1.5 pixels. ``boundary='extend'`` repeats the
# edge pixels outside the image, so the edges are not pulled towards a fill
# value. ``return_certainty=True`` also gives, for every output, the share of
# the kernel's weight that fell on pixels that were there.

k = kernels.gaussian(1.5)
spread = fastcorr.convolve2d(damaged, k, mode="same", boundary="symm")  # NaN spreads
zeros = fastcorr.convolve2d(np.nan_to_num(damaged), k, mode="same", boundary="symm")  # holes as 0
smooth, certainty = fastcorr.normalized_convolution(damaged, k, boundary="extend", return_certainty=True)
filled = np.where(holes, smooth, damaged)  # keep the pixels that are there, fill the holes

print(f"NaN after a plain convolution: {np.isnan(spread).mean():.1%} of the pixels")
print(f"output certainty: {certainty.min():.2f} to {certainty.max():.2f}")
rms = np.sqrt(np.mean((filled[holes] - image[holes]) ** 2))
print(f"filled holes against the original pixels: RMS error {rms:.3f} (grey levels 0-1)")

# %%
# Before and after
# ----------------
#
# Missing pixels are drawn in red.

cmap = plt.get_cmap("gray").with_extremes(bad="red")
panels = [
    (image, "original"),
    (damaged, "20% of the pixels missing"),
    (zeros, "plain convolution, holes as 0"),
    (smooth, "normalized convolution"),
    (filled, "holes filled, other pixels kept"),
    (certainty, "output certainty"),
]
fig, axes = plt.subplots(2, 3, figsize=(10, 7.6), layout="constrained")
for ax, (img, title) in zip(axes.flat, panels):
    shown = ax.imshow(img, cmap=cmap if title != "output certainty" else "viridis",
                      vmin=0, vmax=1 if title != "output certainty" else None)
    ax.set_title(title)
    ax.set_axis_off()
fig.colorbar(shown, ax=axes[1, 2], shrink=0.8)
plt.show()

# %%
# A detail
# --------
#
# The plain convolution with the holes as zeros is darker and speckled
# where holes cluster; the normalized convolution is as bright as the
# original everywhere, and the filled image keeps every pixel that was
# there.

rows, cols = slice(120, 220), slice(190, 290)
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained")
for ax, (img, title) in zip(axes, [panels[0], panels[1], panels[2], panels[4]]):
    ax.imshow(img[rows, cols], cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()
plt.show()
