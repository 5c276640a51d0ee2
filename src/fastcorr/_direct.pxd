# The old cimport path of the direct method's C-level API, kept for one release:
# cimport from fastcorr.methods.direct instead (same functions, same signatures).
from fastcorr.methods.direct cimport corr2d_f32, corr2d_f64
