"""Compiled modules are plain nn.Modules: DistributedDataParallel and FSDP2 train them unchanged.

Two CPU processes (gloo, loopback) train one step of a compiled CliqueNet on different data; DDP
must leave both replicas with identical weights, equal to one process training on both halves.
A memory-efficient build (recomputation in backward) must train under DDP exactly as a plain one.
FSDP2 (`fully_shard` on each ResNet stage, then on the root) trains three steps to the weights one
process gets on the whole batch.
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
RESNET = SPEC.with_name("resnet.arch")
RESNET_PARAMS = {"blocks": [1, 2, 1, 1], "bottleneck": True, "size": 32, "classes": 10, "seed": 0}
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_trains_a_compiled_module(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
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


def fsdp_worker(rank: int, port: int, out: str) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    mesh = init_device_mesh("cpu", (2,))
    x, y = data()
    mine = x[rank * 4:(rank + 1) * 4], y[rank * 4:(rank + 1) * 4]
    model = build(RESNET, "resnet", **RESNET_PARAMS).eval()  # eval: BN uses running stats
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        fully_shard(stage, mesh=mesh)
    fully_shard(model, mesh=mesh)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(*mine[:1]), mine[1]).backward()
        optimiser.step()
    full = {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in model.state_dict().items()}
    torch.save(full, f"{out}/fsdp_rank{rank}.pt")
    dist.destroy_process_group()


def test_fsdp2_shards_each_stage_and_trains_like_one_process(tmp_path):
    mp.spawn(fsdp_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    single = build(RESNET, "resnet", **RESNET_PARAMS).eval()
    optimiser = torch.optim.SGD(single.parameters(), lr=0.1)
    for _ in range(3):
        optimiser.zero_grad()
        x, y = data()
        torch.nn.functional.cross_entropy(single(x), y).backward()  # the mean over both halves
        optimiser.step()
    expected = single.state_dict()
    for rank in (0, 1):
        got = torch.load(tmp_path / f"fsdp_rank{rank}.pt")
        assert list(got) == list(expected)
        for name in expected:
            torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
