"""The server's device placement (``--device``): :class:`zhie.runtime.device.Placement` with the settings'
fallback policy and each model folder's fp16 model (docs/gpu.md)."""

from __future__ import annotations

from functools import partial

from ..models.fp16 import fp16_model_for
from ..runtime.device import DeviceUnavailable, GpuPolicy, Placement, resolve_device
from ..runtime.session import default_cache_dir
from .settings import Settings

__all__ = ["DeviceUnavailable", "placement_for", "resolve_device"]


def placement_for(settings: Settings) -> Placement:
    """Resolves ``settings.device`` (``auto`` logged; ``cuda`` without a GPU raises DeviceUnavailable)."""
    policy = GpuPolicy(failures=settings.gpu_failures, deadline_s=settings.gpu_deadline_s, cooldown_s=settings.gpu_cooldown_s)
    # the int8 kind keeps each task's CPU batch budget: per-tensor dynamic quantisation reads the whole batch,
    # so the same batches give the CPU model's answers exactly
    return Placement(settings.device, policy, batch_tokens=settings.gpu_batch_tokens if settings.gpu_model == "fp16" else 0,
                     gpu_model=partial(fp16_model_for, cache_dir=default_cache_dir(), kind=settings.gpu_model))
