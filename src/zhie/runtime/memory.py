"""Process memory settings for serving."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc mallopt parameter


def limit_malloc_arenas(default: int = 2) -> bool:
    """Cap glibc's malloc arenas (``ZHIE_MALLOC_ARENAS``, default 2; 0 leaves glibc's default).

    glibc gives each thread that allocates its own arena, up to 8 per core; ONNX Runtime's threads,
    the model thread and the server's threads then each keep freed activation buffers in their own
    arena. Two arenas keep idle memory about 20 MB lower after load at no measurable speed cost.
    Call it early, before threads start allocating. Returns whether the cap was set."""
    n = int(os.environ.get("ZHIE_MALLOC_ARENAS", default))
    if n <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, n))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
