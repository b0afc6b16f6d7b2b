"""Where a training step spends its time: torch.profiler over 50 steps of one flow, on one thread.

    .venv/bin/python benchmarks/profile_step.py [realnvp | maf | planar]

realnvp and maf: maximum likelihood on moons, batch 512 (as in compare.py); planar: 32 planar
layers trained by reverse KL on U1, batch 128 (the slowest training of lesson 4). Prints the
operators that took the most time and the share of the optimizer step.
"""

import sys

import torch
from torch.profiler import ProfilerActivity, profile

import nflesson as nf
from nflesson.train import optimizer_and_schedule


def loss_function(name):
    if name == "planar":
        flow, energy = nf.flows.planar(2, layers=32), nf.data.get("u1")

        def loss():
            x, log_q = flow.sample_and_log_prob(128)
            return (log_q - energy.log_prob(x)).mean()

        return flow, loss
    flow = {"realnvp": nf.flows.realnvp, "maf": nf.flows.maf}[name](2)
    x = nf.data.get("moons").sample(512, generator=torch.Generator().manual_seed(0))
    return flow, lambda: -flow.log_prob(x).mean()


def main(name="realnvp"):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    flow, loss = loss_function(name)
    optimizer, _ = optimizer_and_schedule(flow.parameters(), 1e-3, 1000)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    for _ in range(30):  # warm-up: first calls pay for imports and allocations
        step()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(50):
            step()
    averages = profiler.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15))
    total = sum(event.self_cpu_time_total for event in averages)
    adam = sum(event.cpu_time_total for event in averages if event.key.startswith("Optimizer.step"))
    print(f"{name}: {total / 50 / 1000:.2f} ms per step under the profiler, optimizer step {adam / total:.0%}")


if __name__ == "__main__":
    main(*sys.argv[1:])
