# The old cimport path of the separable method's C-level API, kept for one release:
# cimport from fastcorr.methods.separable instead (same functions, same signatures).
from fastcorr.methods.separable cimport sepcorr2d_f32, sepcorr2d_f64
