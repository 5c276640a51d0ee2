"""
The delay between two noisy recordings, from a window of lags
==============================================================

Two sensors record the same source; the second hears it ``delay`` samples
later, and both add their own noise. The delay is the lag where the
cross-correlation peaks. :func:`fastcorr.correlate` with ``lags`` computes
only the lags asked for (here -300..300 of 400,000-sample recordings), in
time proportional to their number, where ``scipy.signal.correlate`` would
compute all 799,999 lags of the full correlation to use 601 of them.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastcorr

# %%
# Two recordings of one source
# ----------------------------
#
# A band-limited random source (white noise smoothed by a short moving
# average), heard by the second sensor 137 samples late, each recording
# with noise as strong as the source.

rng = np.random.default_rng(0)
n, delay = 400_000, 137
source = fastcorr.convolve(rng.standard_normal(n + delay), np.ones(8) / 8, mode="same")
first = source[delay:] + rng.standard_normal(n)       # first[t] = s(t + delay)
second = source[:n] + rng.standard_normal(n)          # second[t] = s(t): the late one

# %%
# A window of lags
# ----------------
#
# Lag ``l`` of ``correlate(second, first)`` is ``sum_t second[t + l] * first[t]``:
# it peaks where ``second`` repeats ``first`` ``l`` samples later.

max_lag = 300
z = fastcorr.correlate(second, first, lags=max_lag)
lags = np.arange(-max_lag, max_lag + 1)
found = lags[np.argmax(z)]
print(f"delay found: {found} samples (true: {delay})")

# %%
# The same values as the full correlation's, sliced at those lags
# (``scipy.signal.correlation_lags`` numbers them):

import scipy.signal as ss

full = ss.correlate(second[:20_000], first[:20_000])
full_lags = ss.correlation_lags(20_000, 20_000)
window = fastcorr.correlate(second[:20_000], first[:20_000], lags=max_lag)
keep = (full_lags >= -max_lag) & (full_lags <= max_lag)
print("largest difference from scipy's full correlation:", np.abs(window - full[keep]).max())

# %%
# Picture
# -------

fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), layout="constrained")
t = np.arange(600)
top.plot(t, first[:600], lw=0.8, label="first sensor")
top.plot(t, second[:600] - 6, lw=0.8, label="second sensor (shifted down)")
top.set_xlabel("sample")
top.set_title(f"two noisy recordings, the second {delay} samples late")
top.legend(loc="upper right", fontsize="small")
top.set_yticks([])
bottom.plot(lags, z / n, lw=1)
bottom.axvline(found, color="C3", ls="--", lw=1, label=f"peak at lag {found}")
bottom.set_xlabel("lag (samples)")
bottom.set_ylabel("correlation / n")
bottom.set_title(f"fastcorr.correlate(second, first, lags={max_lag})")
bottom.legend(loc="upper left", fontsize="small")
plt.show()
