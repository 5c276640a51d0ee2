# The old cimport path of the im2col method's C-level API, kept for one release:
# cimport from fastcorr.methods.im2col instead (same functions, same signatures).
from fastcorr.methods.im2col cimport im2col_f32, im2col_f64
