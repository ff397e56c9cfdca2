"""Compiled modules are plain nn.Modules: DistributedDataParallel trains them unchanged.

Two CPU processes (gloo, loopback) train one step of a compiled CliqueNet on different data; DDP
must leave both replicas with identical weights, equal to one process training on both halves.
A memory-efficient build (recomputation in backward) must train under DDP exactly as a plain one.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from archdsl import build

SPEC = Path(__file__).resolve().parents[1] / "specs" / "cliquenet.arch"
PARAMS = {"k": 6, "T": 6, "drop": 0.0, "seed": 0}


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


def step(model, x, y) -> None:
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimiser.step()


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    x, y = data()
    mine = x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]
    model = DistributedDataParallel(build(SPEC, "cliquenet_cifar", **PARAMS).eval())  # eval: BN uses running stats
    step(model, *mine)
    torch.save(model.module.state_dict(), f"{out}/rank{rank}.pt")
    for efficient in (False, True):  # training mode: each replica's BN sees its own half
        model = DistributedDataParallel(build(SPEC, "cliquenet_cifar", memory_efficient=efficient, **PARAMS).train())
        step(model, *mine)
        torch.save(model.module.state_dict(), f"{out}/rank{rank}_train_{efficient}.pt")
    dist.destroy_process_group()


def test_ddp_trains_a_compiled_module(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    single = build(SPEC, "cliquenet_cifar", **PARAMS).eval()
    step(single, *data())  # the mean loss over both halves: what DDP's averaged gradients give
    expected = single.state_dict()
    for name in expected:
        assert torch.equal(a[name], b[name]), name
        torch.testing.assert_close(a[name], expected[name], rtol=1e-4, atol=1e-6)
    for rank in (0, 1):
        plain, efficient = (torch.load(tmp_path / f"rank{rank}_train_{e}.pt") for e in (False, True))
        assert plain.keys() == efficient.keys()
        for name in plain:
            torch.testing.assert_close(efficient[name], plain[name], rtol=1e-5, atol=1e-6, msg=name)
