"""Peak memory of one call, for the benchmarks' memory figures (Linux).

Run in a fresh process (the benchmarks start one per measurement), so that
nothing else the process did is in the peak.
"""


def _status_bytes(field):
    with open("/proc/self/status") as f:
        return int(f.read().split(field + ":")[1].split()[0]) * 1024


def peak_growth(call):
    """Bytes by which the resident set's peak (VmHWM) grew during ``call()``.

    The peak is reset to the current RSS first: ``ru_maxrss`` would carry
    the parent's peak across fork and exec (a large parent hides the growth).
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_bytes("VmRSS")
    except OSError:
        before = _status_bytes("VmHWM")
    call()
    return _status_bytes("VmHWM") - before
