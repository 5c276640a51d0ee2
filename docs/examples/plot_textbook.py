"""
The textbook chapter, in pictures
=================================

The chapter "Convolutions for Images" of *Dive into Deep Learning* (d2l.ai),
computed with fastcorr: the cross-correlation of a 3x3 input with a 2x2
kernel, edge detection on a black-and-white image, and learning the edge
kernel ``[1, -1]`` back from data with :class:`fastcorr.nn.Conv2D`.
``python -m fastcorr demo`` prints the same walk-through in a terminal, and
:doc:`/user_guide/textbook` answers the chapter's exercises.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastcorr
from fastcorr.nn import Conv2D


def show(ax, a, title, cmap="Greys_r", vmin=None, vmax=None, fmt="g"):
    """Draw a small matrix with its values written in the cells."""
    a = np.asarray(a, dtype=np.float64)
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(a):
        # dark text on light cells, light text on dark ones
        light = im.cmap(im.norm(v))[:3]
        color = "black" if np.mean(light) > 0.5 else "white"
        ax.text(j, i, f"{v:{fmt}}", ha="center", va="center", color=color,
                fontsize=9)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


# %%
# The cross-correlation operation
# -------------------------------
#
# The kernel slides over the input; each output is the sum of the window
# times the kernel, elementwise, with no flipping. ``mode='valid'`` keeps
# the positions where the kernel fits: a (3-2+1) x (3-2+1) output. The
# highlighted window gives the highlighted output,
# 0x0 + 1x1 + 3x2 + 4x3 = 19.

X = np.arange(9.0).reshape(3, 3)
K = np.array([[0.0, 1.0], [2.0, 3.0]])
Y = fastcorr.correlate2d(X, K, mode="valid")
print(Y)

fig, axes = plt.subplots(1, 3, figsize=(7, 2.6),
                         gridspec_kw={"width_ratios": [3, 2, 2]})
show(axes[0], X, "input X", cmap="Blues", vmin=0, vmax=16)
show(axes[1], K, "kernel K", cmap="Oranges", vmin=0, vmax=6)
show(axes[2], Y, "correlate2d(X, K, 'valid')", cmap="Greens", vmin=0, vmax=60)
axes[0].add_patch(plt.Rectangle((-0.5, -0.5), 2, 2, fill=False, lw=3, ec="crimson"))
axes[2].add_patch(plt.Rectangle((-0.5, -0.5), 1, 1, fill=False, lw=3, ec="crimson"))
fig.tight_layout()

# %%
# Edge detection
# --------------
#
# A 6x8 image, white (1) with its middle four columns black (0), and the
# 1x2 kernel ``[1, -1]``: the output is 0 where horizontal neighbours
# agree, 1 at a step from white to black and -1 from black to white. On the
# transposed image the edges run along the rows, and this kernel, which only
# compares horizontal neighbours, sees none of them.

X = np.ones((6, 8))
X[:, 2:6] = 0
K = np.array([[1.0, -1.0]])
Y = fastcorr.correlate2d(X, K, "valid")
Yt = fastcorr.correlate2d(X.T, K, "valid")

signed = dict(cmap="RdBu", vmin=-1.5, vmax=1.5)  # blue +1, red -1
fig, axes = plt.subplots(2, 2, figsize=(7, 6.4),
                         gridspec_kw={"height_ratios": [6, 8]})
show(axes[0, 0], X, "image X")
show(axes[0, 1], Y, "Y = correlate2d(X, [[1, -1]], 'valid')", **signed)
show(axes[1, 0], X.T, "transposed image X.T")
show(axes[1, 1], Yt, "correlate2d(X.T, [[1, -1]], 'valid')", **signed)
fig.tight_layout()

# %%
# Learning the kernel back
# ------------------------
#
# A convolution layer cross-correlates and adds a bias. Start from a random
# 1x2 kernel (seed 0, no bias) and do gradient descent on the squared error
# between the layer's output on ``X`` and ``Y``, with a learning rate of
# 3e-2. :class:`~fastcorr.nn.Conv2D` keeps its parameters as numpy arrays:
# ``backward`` computes the gradients with :func:`fastcorr.conv2d_backward`
# and ``step`` moves the weights. Layers take NCHW arrays, hence the
# reshapes.

x4 = X.reshape(1, 1, 6, 8).astype(np.float32)
y4 = Y.reshape(1, 1, 6, 7).astype(np.float32)
layer = Conv2D(1, 1, kernel_size=(1, 2), bias=False, rng=0)

losses, weights = [], [layer.weight.ravel().copy()]
for i in range(30):
    diff = layer(x4) - y4
    losses.append(float(np.sum(diff.astype(np.float64) ** 2)))
    layer.backward(2 * diff)  # gradient of sum(diff**2) with respect to the output
    layer.step(3e-2)
    weights.append(layer.weight.ravel().copy())
    if (i + 1) % 2 == 0 and i < 10:
        print(f"step {i + 1:2d}, loss {losses[-1]:.3f}")
weights = np.array(weights)
print("learned kernel after 10 steps:", np.round(weights[10], 4))
print("learned kernel after 30 steps:", np.round(weights[30], 4))

fig, (ax_loss, ax_w, ax_k) = plt.subplots(
    1, 3, figsize=(10, 3.2), gridspec_kw={"width_ratios": [3, 3, 1.6]}
)
ax_loss.semilogy(np.arange(1, 31), losses, "o-", ms=3)
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("squared error")
ax_loss.set_title("loss", fontsize=10)
for j, (target, color) in enumerate([(1.0, "tab:blue"), (-1.0, "tab:red")]):
    ax_w.plot(weights[:, j], color=color, label=f"K[0, {j}]")
    ax_w.axhline(target, color=color, ls=":", lw=1)
ax_w.set_xlabel("step")
ax_w.set_title("kernel weights (dotted: [1, -1])", fontsize=10)
ax_w.legend(fontsize=8)
show(ax_k, weights[30].reshape(1, 2), "learned kernel", fmt=".3f", **signed)
fig.tight_layout()

# %%
# Cross-correlation and convolution
# ---------------------------------
#
# A true convolution flips the kernel in both axes first, so convolving
# with the flipped kernel gives the cross-correlation. A layer that
# convolved would learn the flipped kernel and produce the same outputs:
# this is why deep learning calls its cross-correlation "convolution".

X = np.arange(9.0).reshape(3, 3)
K = np.array([[0.0, 1.0], [2.0, 3.0]])
print(np.array_equal(fastcorr.convolve2d(X, K[::-1, ::-1], "valid"),
                     fastcorr.correlate2d(X, K, "valid")))
