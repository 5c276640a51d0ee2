"""
Template matching: finding a picture in a picture
=================================================

:func:`fastcorr.match_template` scores every placement of a template on an
image; :func:`fastcorr.peaks` picks the best matches from the scores. Here
a patch of a textured image is found again, at its own place and at two
others where copies of it were pasted, dimmer and noisier; then once more
with a stripe of the image missing (NaN).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import fastcorr
from fastcorr import kernels

# %%
# A textured image
# ----------------
#
# Noise smoothed at several scales (coarse blobs, finer grain) looks like
# an aerial photograph of fields and woods; a few bright roads cross it.

rng = np.random.default_rng(3)
H, W = 360, 480
image = np.zeros((H, W), np.float32)
for sigma, weight in ((24.0, 1.0), (8.0, 0.5), (2.0, 0.25), (0.7, 0.1)):
    noise = rng.standard_normal((H, W)).astype(np.float32)
    layer = fastcorr.correlate2d(noise, kernels.gaussian(sigma).astype(np.float32), "same", "wrap")
    image += weight * layer / layer.std()
r, c = np.mgrid[0:H, 0:W]
image[np.abs(0.35 * c + 40 - r) < 3] += 2.0
image[np.abs(c - 300 - 0.2 * r) < 2] += 1.5

# %%
# The template, and two more copies of it
# ---------------------------------------
#
# A 48x64 patch is cut out; two copies go elsewhere, one at 70% of its
# contrast, both with noise added. The normalised correlation coefficient
# (the default, ``method='ccoeff_normed'``) does not mind a change of
# brightness or contrast.

top, left, h, w = 60, 110, 48, 64
template = image[top:top + h, left:left + w].copy()
for (y, x), gain in (((230, 40), 0.7), ((250, 360), 1.0)):
    image[y:y + h, x:x + w] = gain * template + 0.3 * rng.standard_normal((h, w)).astype(np.float32)

scores = fastcorr.match_template(image, template)
positions, values = fastcorr.peaks(scores, num_peaks=3, min_distance=20, subpixel="gaussian")
for (y, x), v in zip(positions, values):
    print(f"match at row {y:6.2f}, column {x:6.2f}: score {v:.3f}")

# %%
# The scores are one per placement of the template's top-left corner:
# ``(H - h + 1) x (W - w + 1)``, here float32 like the inputs.

fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), gridspec_kw={"width_ratios": [4, 1, 4]})
axes[0].imshow(image, cmap="gray")
axes[0].set_title("image and matches")
for (y, x), v in zip(positions, values):
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, color="tab:red", lw=1.5))
    axes[0].annotate(f"{v:.2f}", (x, y - 4), color="tab:red", fontsize=9)
axes[1].imshow(template, cmap="gray")
axes[1].set_title(f"template {h}x{w}")
im = axes[2].imshow(scores, cmap="RdBu_r", vmin=-1, vmax=1)
axes[2].plot(positions[:, 1], positions[:, 0], "o", mfc="none", mec="k", ms=12)
axes[2].set_title("scores ('ccoeff_normed')")
fig.colorbar(im, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# Missing pixels
# --------------
#
# NaN pixels of the image are missing data: each window's statistics use
# only its valid pixels (Padfield's masked normalised cross-correlation),
# and windows with less than ``overlap_ratio`` of the template's pixels
# valid score NaN. Here a stripe across the first match and a block of
# dead pixels are lost; the match is still found, with score 1.

holes = image.copy()
holes[70:78, :] = np.nan
holes[150:230, 250:330] = np.nan
scores_nan = fastcorr.match_template(holes, template, overlap_ratio=0.5)
best, value = fastcorr.peaks(scores_nan)
print(f"with missing pixels: best match at {best[0]}, score {value[0]:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
axes[0].imshow(holes, cmap="gray")
axes[0].add_patch(Rectangle((best[0, 1] - 0.5, best[0, 0] - 0.5), w, h, fill=False, color="tab:red", lw=1.5))
axes[0].set_title("image with missing pixels (white: NaN)")
axes[0].set_facecolor("white")
im = axes[1].imshow(scores_nan, cmap="RdBu_r", vmin=-1, vmax=1)
axes[1].set_title("scores (NaN: too little overlap)")
fig.colorbar(im, ax=axes[1], shrink=0.8)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# Exact on images far from zero
# -----------------------------
#
# Window means and variances are running sums about a local centre, in
# double precision. Sums taken about zero (cumulative sums, as
# ``skimage.feature.match_template`` uses) lose every digit when the
# values sit far from zero: here the same image with 10000 added, against
# a reference that centres each window before summing.

offset = image[:120, :160].astype(np.float64) + 1e4


def centred_reference(x, t):
    """ccoeff_normed window by window, each window centred first (float64)."""
    v = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), t.shape)
    vc = v - v.mean(axis=(-1, -2), keepdims=True)
    tc = t.astype(np.float64) - t.mean(dtype=np.float64)
    return (vc * tc).sum(axis=(-1, -2)) / np.sqrt((vc**2).sum(axis=(-1, -2)) * (tc**2).sum())


for dtype in (np.float64, np.float32):
    x = offset.astype(dtype)
    t = x[30:45, 50:70]
    error = np.abs(fastcorr.match_template(x, t) - centred_reference(x, t)).max()
    print(f"{np.dtype(dtype).name}: largest error {error:.1e}")
