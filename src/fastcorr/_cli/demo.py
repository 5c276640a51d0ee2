"""``python -m fastcorr demo``: the chapter "Convolutions for Images", run with fastcorr.

Each section prints what it computes and the result, in the chapter's order,
then the chapter's exercises answered with library calls.
"""
import time

import numpy as np

_WIDTH = 72


def _title(text):
    print()
    print(text)
    print("=" * len(text))


def _say(text, indent=0):
    """Print a paragraph, wrapped."""
    import textwrap

    pad = " " * indent
    print(textwrap.fill(" ".join(text.split()), _WIDTH, initial_indent=pad, subsequent_indent=pad))


def _fmt(values):
    """A short vector as '[1, -2, 1]' (integers without a decimal point)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return "[" + ", ".join(f"{v:g}" if v != 0 else "0" for v in values) + "]"


def _show(label, arr, indent=4):
    arr = np.asarray(arr)
    if np.iscomplexobj(arr) or not np.all(np.isfinite(arr)):
        body = np.array2string(arr)
    elif np.all(arr == np.round(arr)):
        body = np.array2string(arr.astype(np.int64) + 0)  # "+ 0" turns -0 into 0
    else:
        body = np.array2string(arr, precision=4, suppress_small=True, floatmode="maxprec")
    pad = " " * indent
    print(f"{label}" if label else "", end="\n" if label else "")
    for line in body.splitlines():
        print(pad + line)


def edge_image():
    """The chapter's 6x8 image: ones, with the middle four columns black (0)."""
    X = np.ones((6, 8))
    X[:, 2:6] = 0
    return X


def learn_edge_kernel(steps=10, lr=3e-2, seed=0, every=2, out=print):
    """Learn a (1, 2) kernel from the edge image and its [1, -1] response.

    Returns the layer after ``steps`` steps of gradient descent on the
    squared error, calling ``out(step, loss)`` every ``every`` steps.
    """
    import fastcorr
    from fastcorr.nn import Conv2D

    X = edge_image()
    Y = fastcorr.correlate2d(X, [[1.0, -1.0]], "valid")
    x4 = X.reshape(1, 1, *X.shape).astype(np.float32)
    y4 = Y.reshape(1, 1, *Y.shape).astype(np.float32)
    layer = Conv2D(1, 1, kernel_size=(1, 2), bias=False, rng=seed)
    for i in range(steps):
        y_hat = layer(x4)
        diff = y_hat - y4
        loss = float(np.sum(diff.astype(np.float64) ** 2))
        layer.backward(2 * diff)  # d(loss)/d(y_hat)
        layer.step(lr)
        if out is not None and (i + 1) % every == 0:
            out(i + 1, loss)
    return layer


def run():
    import fastcorr
    from fastcorr import kernels

    t0 = time.perf_counter()
    print("fastcorr demo: the chapter 'Convolutions for Images' (d2l.ai), computed with fastcorr")

    # ------------------------------------------------------------------
    _title("1. The cross-correlation operation")
    X = np.arange(9.0).reshape(3, 3)
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    _say("A 2x2 kernel K slides over a 3x3 input X. Each output is the sum of the "
         "window times the kernel, elementwise (no flipping: a cross-correlation).")
    _show("X =", X)
    _show("K =", K)
    Y = fastcorr.correlate2d(X, K, mode="valid")
    for i in range(2):
        for j in range(2):
            win = X[i:i + 2, j:j + 2].ravel()
            terms = " + ".join(f"{a:g}x{b:g}" for a, b in zip(win, K.ravel()))
            print(f"    Y[{i},{j}] = {terms} = {Y[i, j]:g}")
    _show("fastcorr.correlate2d(X, K, mode='valid') =", Y)
    _say(f"The output is (3-2+1) x (3-2+1) = {Y.shape[0]}x{Y.shape[1]}: "
         "(n_h - k_h + 1) x (n_w - k_w + 1), the positions where the kernel fits.")

    # ------------------------------------------------------------------
    _title("2. Edge detection")
    X = edge_image()
    K = np.array([[1.0, -1.0]])
    _say("A 6x8 image, white (1) with its middle four columns black (0), and the "
         "1x2 kernel K = [1, -1]: it is 0 where horizontal neighbours agree.")
    _show("X =", X)
    Y = fastcorr.correlate2d(X, K, "valid")
    _show("Y = correlate2d(X, K, 'valid') =   (1: white to black, -1: black to white)", Y)
    _show("correlate2d(X.T, K, 'valid') =   (the transposed image: K only sees vertical edges)",
          fastcorr.correlate2d(X.T, K, "valid"))

    # ------------------------------------------------------------------
    _title("3. Learning the kernel back")
    _say("Start from a random 1x2 kernel (fastcorr.nn.Conv2D, seed 0, no bias) and "
         "do gradient descent on the squared error between its output and Y "
         "(learning rate 3e-2). The gradient comes from fastcorr.conv2d_backward.")
    try:
        layer = learn_edge_kernel(
            steps=10, out=lambda step, loss: print(f"    step {step:2d}, loss {loss:.3f}")
        )
    except NotImplementedError as exc:
        print(f"    (skipped: {exc})")
    else:
        w = layer.weight.reshape(1, 2)
        print(f"    learned kernel after 10 steps: [{w[0, 0]:.4f}, {w[0, 1]:.4f}]   (target [1, -1])")
        more = learn_edge_kernel(steps=30, out=None)
        w30 = more.weight.reshape(1, 2)
        print(f"    after 30 steps:                [{w30[0, 0]:.4f}, {w30[0, 1]:.4f}]")

    # ------------------------------------------------------------------
    _title("4. Cross-correlation and convolution")
    X = np.arange(9.0).reshape(3, 3)
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    _say("A true convolution flips the kernel in both axes first. So convolving "
         "with the flipped kernel K[::-1, ::-1] gives the cross-correlation with K; "
         "a layer that convolved would simply learn the flipped kernel.")
    _show("K[::-1, ::-1] =", K[::-1, ::-1])
    conv = fastcorr.convolve2d(X, K[::-1, ::-1], "valid")
    _show("convolve2d(X, K[::-1, ::-1], 'valid') =", conv)
    same = np.array_equal(conv, fastcorr.correlate2d(X, K, "valid"))
    print(f"    equal to correlate2d(X, K, 'valid'): {same}")

    # ------------------------------------------------------------------
    _title("5. Feature map and receptive field")
    _say("Stack a second 2x2 layer on the 2x2 output Y: its single output z "
         "depends on all four elements of Y, and through them on all nine inputs.")
    rf = fastcorr.receptive_field([2, 2])
    print(f"    fastcorr.receptive_field([2, 2]) = {rf}")
    # Generic (all-ones) 2x2 kernels: which inputs *may* affect z.
    m1 = fastcorr.correlation_matrix(np.ones((2, 2)), (3, 3))
    m2 = fastcorr.correlation_matrix(np.ones((2, 2)), (2, 2))
    touched = ((m2 @ m1).toarray() > 0).reshape(3, 3).astype(int)
    _show("    inputs that z depends on (1 = yes), from the product of the two layers' matrices:",
          touched, indent=8)
    print(f"    a deeper stack: receptive_field([3, 3, 3]) = {fastcorr.receptive_field([3, 3, 3])}, "
          f"with stride 2 first: {fastcorr.receptive_field([3, 3, 3], strides=[2, 1, 1])}")

    # ------------------------------------------------------------------
    _title("6. Exercises")
    print("6.1 Diagonal edges")
    D = np.triu(np.ones((5, 5)))
    _show("    D (white above the diagonal) =", D, indent=8)
    K = np.array([[1.0, -1.0]])
    _show("    A. correlate2d(D, K): the diagonal edge shows (it has a horizontal step in every row)",
          fastcorr.correlate2d(D, K, "valid"), indent=8)
    _show("    B. correlate2d(D.T, K): still seen, with the opposite sign (now white is left of black)",
          fastcorr.correlate2d(D.T, K, "valid"), indent=8)
    _show("    C. correlate2d(D, K.T): the transposed kernel sees the same edge as steps between rows",
          fastcorr.correlate2d(D, K.T, "valid"), indent=8)

    print()
    print("6.2 Automatic gradients")
    _say("fastcorr has no autograd: the book's Conv2D fails because its loop "
         "assigns into a tensor, which the tape cannot differentiate. "
         "fastcorr.nn.Conv2D.backward computes the gradients explicitly with "
         "conv2d_backward (section 3).", indent=4)

    print()
    print("6.3 Correlation as a matrix product")
    X = np.arange(9.0).reshape(3, 3)
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    M = fastcorr.correlation_matrix(K, X.shape, "valid")
    _say("Change the kernel: a sparse 4x9 matrix M whose rows are K laid over "
         "the flattened image, so that Y = M @ X.ravel().", indent=4)
    _show("    fastcorr.correlation_matrix(K, (3, 3)).toarray() =", M.toarray(), indent=8)
    ok = np.array_equal(M @ X.ravel(), fastcorr.correlate2d(X, K, "valid").ravel())
    print(f"        M @ X.ravel() = {_fmt(M @ X.ravel())}; equal to correlate2d(X, K).ravel(): {ok}")
    for mode in ("same", "full"):
        for boundary in ("fill", "wrap", "symm"):
            Mb = fastcorr.correlation_matrix(K, X.shape, mode, boundary)
            ok = np.allclose(Mb @ X.ravel(), fastcorr.correlate2d(X, K, mode, boundary).ravel())
            print(f"        mode={mode!r:7} boundary={boundary!r:7} M shape {str(Mb.shape):8} matches: {ok}")
    _say("Change the input: copy every 2x2 window into a column (im2col, "
         "torch's unfold); then Y = K.ravel() @ columns, one matrix product.", indent=4)
    if hasattr(fastcorr, "im2col"):
        cols = np.asarray(fastcorr.im2col(X[None, None], (2, 2)))[0]
        how = "fastcorr.im2col(X[None, None], (2, 2))[0]"
    else:  # not in this build: the same columns with numpy
        cols = np.lib.stride_tricks.sliding_window_view(X, (2, 2)).reshape(4, 4).T
        how = "the 2x2 windows of X as columns (numpy)"
    _show(f"    {how} =", cols, indent=8)
    print(f"        K.ravel() @ columns = {_fmt(K.ravel() @ cols)}")

    print()
    print("6.4 Designing kernels (fastcorr.kernels)")
    t = np.arange(7.0)
    f = (t**2)[None, :]
    d2 = kernels.finite_difference(2)
    print(f"    A. second derivative: finite_difference(2) = {_fmt(d2)};")
    print(f"       on x**2 it gives {_fmt(fastcorr.correlate2d(f, d2, 'valid'))} (the second derivative of x**2 is 2).")
    print(f"       More accurate: finite_difference(2, size=5) * 12 = {_fmt(kernels.finite_difference(2, size=5) * 12)};")
    print("       in 2-D, d2/dx2 + d2/dy2 is laplacian():")
    _show("", kernels.laplacian(), indent=8)
    box = kernels.box((1, 4))
    s = fastcorr.correlate2d(np.full((1, 6), 0.5), box, "valid")
    print(f"    B. integral: box((1, 4)) = {_fmt(box)} sums each window (the discrete integral):")
    print(f"       a constant 0.5 integrates to {_fmt(s)} over 4 samples.")
    print("    C. a derivative of degree d needs at least d + 1 taps (d + 1 samples")
    print("       determine a polynomial of degree d, whose d-th derivative is constant):")
    for d in range(1, 5):
        k = kernels.finite_difference(d)
        val = fastcorr.correlate2d((t**d)[None, :], k, "valid").ravel()[0]
        print(f"       d={d}: finite_difference({d}) = {_fmt(k):18} on x**{d} gives {val:g} = {d}!")

    print()
    print(f"done in {time.perf_counter() - t0:.2f} s")
