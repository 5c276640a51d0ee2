"""
Registering a shifted image to a fraction of a pixel
====================================================

:func:`fastcorr.phase_cross_correlation` finds the translation between two
images: the peak of their phase correlation (the inverse FFT of the
cross-power spectrum divided by its magnitude) gives the shift in whole
pixels, and Guizar-Sicairos's upsampled DFT, evaluated only around that
peak, refines it to ``1 / upsample_factor`` of a pixel. The results are
scikit-image's ``skimage.registration.phase_cross_correlation``.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastcorr

# %%
# A synthetic scene and a shifted copy
# ------------------------------------
#
# A 256x256 scene of blurred blobs, and a copy moved by (12.4, -7.7) pixels
# with a Fourier shift (circular, exact for any fraction of a pixel), plus a
# little noise.

rng = np.random.default_rng(0)
n = 256
f = np.fft.fftfreq(n)
blobs = rng.random((n, n)) ** 40
spectrum = np.fft.fft2(blobs) * np.exp(-((f[:, None] ** 2 + f[None, :] ** 2) / 0.2**2))
reference = np.fft.ifft2(spectrum).real.astype(np.float32)

motion = (12.4, -7.7)
phase = np.exp(-2j * np.pi * (motion[0] * f[:, None] + motion[1] * f[None, :]))
moving = np.fft.ifft2(np.fft.fft2(reference) * phase).real
moving = (moving + 0.01 * moving.std() * rng.standard_normal((n, n))).astype(np.float32)

# %%
# Registration
# ------------
#
# The shift returned is the one that moves ``moving`` back onto
# ``reference``: minus the motion.

shift, error, phasediff = fastcorr.phase_cross_correlation(reference, moving, upsample_factor=20)
print(f"shift found: {shift} (true: {-np.array(motion)})")

# %%
# The cross-power peak
# --------------------
#
# The phase correlation itself, computed with numpy for the picture: a
# single sharp peak at minus the motion (modulo the image size), with its
# neighbourhood, where the upsampled DFT looks, enlarged.

F = np.fft.fft2(reference) * np.conj(np.fft.fft2(moving))
corr = np.fft.fftshift(np.fft.ifft2(F / np.maximum(np.abs(F), 1e-12)).real)
lags = np.arange(n) - n // 2

fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained")
axes[0].imshow(reference, cmap="gray")
axes[0].set_title("reference")
axes[1].imshow(moving, cmap="gray")
axes[1].set_title(f"moving by {motion}")
extent = (lags[0] - 0.5, lags[-1] + 0.5, lags[-1] + 0.5, lags[0] - 0.5)
axes[2].imshow(corr, cmap="magma", extent=extent)
axes[2].set_title("phase correlation")
axes[2].set_xlabel("column shift")
axes[2].set_ylabel("row shift")
axes[3].imshow(corr, cmap="magma", extent=extent)
axes[3].set_xlim(shift[1] - 4, shift[1] + 4)
axes[3].set_ylim(shift[0] + 4, shift[0] - 4)
axes[3].plot(shift[1], shift[0], "c+", ms=14, mew=2, label="sub-pixel shift")
axes[3].legend(loc="lower left", fontsize=8)
axes[3].set_title("around the peak")
for ax in axes[:2]:
    ax.set_axis_off()
plt.show()
