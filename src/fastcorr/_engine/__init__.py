"""The engine: what every public family computes through.

``validate``   the one place that checks arguments and names the bad one
``geometry``   output shapes, offsets and index maps of modes and boundaries
``lowering``   one offset correlation in any dtype on a given method
               (complex as real parts, integers in modular uint64, ...)
``costmodel``  the time estimate of each method for a case
``dispatch``   the one place that chooses a method (correlate2d's and conv2d's)
``calibrate``  measures the cost model's constants on this machine
``conv``       conv2d's plans, workspaces and the drivers of its methods
``config``     threads and the build configuration
``bands``      long calls cut into bands of rows, so that they answer Ctrl-C
``plain_call`` the compiled fast path of plain correlate2d / convolve2d calls

The engine imports the methods (``fastcorr.methods``), never the API layer.
"""
