/*
 * fastcorr: sliding window sums along one row, for template matching's
 * window statistics (methods/window.pyx), plain C, double precision.
 *
 *   fw_row_sums: s1[n*C + c] = sum_{k<w} a1[(n+k)*C + c]
 *                s2[n*C + c] = sum_{k<w} a2[(n+k)*C + c]     for n < nout, c < C
 *
 * a1 and a2 hold (nout + w - 1) * C values and must be readable for C more
 * (the last update of a running sum reads one window past the end; its
 * value is not used). A running sum per channel is one add per output, a
 * chain of dependent adds; for one channel the row is cut into four
 * segments, each with its own running sums, so that eight independent
 * chains keep the adder busy. Running sums of already centred values (the
 * caller subtracts a band centre first) do not cancel: each step adds the
 * difference of two values of the size of one sample.
 * Thread-safe, no Python objects.
 */
#ifndef FASTCORR_WINDOW_KERNELS_H
#define FASTCORR_WINDOW_KERNELS_H

#include <stddef.h>

static void fw_row_sums(const double *a1, const double *a2, double *s1, double *s2,
                        ptrdiff_t C, ptrdiff_t w, ptrdiff_t nout)
{
    ptrdiff_t c, k, j, i;
    if (nout <= 0)
        return;
    if (C == 1 && nout >= 16) {
        const ptrdiff_t L = (nout + 3) / 4;        /* segments 0-2: L outputs */
        const ptrdiff_t last = nout - 3 * L;       /* segment 3: last outputs (>= 1) */
        double p0 = 0, p1 = 0, p2 = 0, p3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
        const double *b0 = a1, *b1 = a1 + L, *b2 = a1 + 2 * L, *b3 = a1 + 3 * L;
        const double *d0 = a2, *d1 = a2 + L, *d2 = a2 + 2 * L, *d3 = a2 + 3 * L;
        double *o0 = s1, *o1 = s1 + L, *o2 = s1 + 2 * L, *o3 = s1 + 3 * L;
        double *r0 = s2, *r1 = s2 + L, *r2 = s2 + 2 * L, *r3 = s2 + 3 * L;
        for (k = 0; k < w; k++) {
            p0 += b0[k]; p1 += b1[k]; p2 += b2[k]; p3 += b3[k];
            q0 += d0[k]; q1 += d1[k]; q2 += d2[k]; q3 += d3[k];
        }
        for (i = 0; i < last; i++) {
            o0[i] = p0; o1[i] = p1; o2[i] = p2; o3[i] = p3;
            r0[i] = q0; r1[i] = q1; r2[i] = q2; r3[i] = q3;
            p0 += b0[i + w] - b0[i]; p1 += b1[i + w] - b1[i];
            p2 += b2[i + w] - b2[i]; p3 += b3[i + w] - b3[i];
            q0 += d0[i + w] - d0[i]; q1 += d1[i + w] - d1[i];
            q2 += d2[i + w] - d2[i]; q3 += d3[i + w] - d3[i];
        }
        for (; i < L; i++) {
            o0[i] = p0; o1[i] = p1; o2[i] = p2;
            r0[i] = q0; r1[i] = q1; r2[i] = q2;
            p0 += b0[i + w] - b0[i]; p1 += b1[i + w] - b1[i]; p2 += b2[i + w] - b2[i];
            q0 += d0[i + w] - d0[i]; q1 += d1[i + w] - d1[i]; q2 += d2[i + w] - d2[i];
        }
        return;
    }
    for (c = 0; c < C; c++) {
        double p = 0, q = 0;
        for (k = 0; k < w; k++) {
            p += a1[k * C + c];
            q += a2[k * C + c];
        }
        s1[c] = p;
        s2[c] = q;
    }
    for (j = C; j < nout * C; j++) {
        s1[j] = s1[j - C] + (a1[j - C + w * C] - a1[j - C]);
        s2[j] = s2[j - C] + (a2[j - C + w * C] - a2[j - C]);
    }
}

#endif
