"""torch.distributed plumbing for torchrun launches (DDP); a plain launch is world size 1.

Validation is sharded across ranks and its confusion matrix all-reduced, so the mIoU a DDP run
reports is the one a single process would compute on the same checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def init(device_name: str) -> tuple[Context, torch.device]:
    """Join the process group when launched by torchrun; pick this rank's device."""
    from trashseg.runtime.devices import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(), resolve_device(device_name)
    ctx = Context(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_array(values: np.ndarray, ctx: Context, device: torch.device) -> np.ndarray:
    """Element-wise sum over ranks (float64 keeps integer counts exact well past 2**31)."""
    if not ctx.distributed:
        return values
    t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=device)
    dist.all_reduce(t)
    return t.cpu().numpy()


def gather_lists(values: list, ctx: Context) -> list:
    if not ctx.distributed:
        return values
    out: list = [None] * ctx.world
    dist.all_gather_object(out, values)
    return [v for part in out for v in part]


def any_rank(flag: bool, ctx: Context, device: torch.device) -> bool:
    if not ctx.distributed:
        return flag
    return bool(sum_array(np.array([float(flag)]), ctx, device)[0] > 0)


def broadcast_buffers(model: torch.nn.Module, ctx: Context) -> None:
    """Give every rank rank 0's BatchNorm statistics: each rank's last training step updated its
    own, so without this the ranks would validate slightly different models, none of them the
    one rank 0 saves."""
    if ctx.distributed:
        for buf in model.buffers():
            dist.broadcast(buf, src=0)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()
