"""What torch.compile does for nflesson's training step: the time of the first compiled step (the
compilation) with a cold cache and with a warm one (a second process reusing the first one's
inductor cache), the steady ms per step compiled and eager, and the run length from which the
compiled run is the shorter: the question is whether ``fit`` should offer it for runs of a lesson's
length (300 to 1,500 steps).

    .venv/bin/python benchmarks/compile_step.py [--flows realnvp maf nsf] [--steps 300]

The step is the one of nflesson.fit (loss, backward, Adam, schedule) with the loss -mean log q(x)
compiled by torch.compile (default mode; AOTAutograd compiles its backward too), on batches of
256 from the moons, one CPU thread. Step times are CPU time of the process (the compilation's wall
time, which includes its compiler subprocesses, is measured with the wall clock). Each flow runs
in fresh processes: one with an empty inductor cache (cold), then one with that cache (warm).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FLOWS = {"realnvp": "nf.flows.realnvp(2, layers=8, hidden=64)", "maf": "nf.flows.maf(2, layers=8, hidden=64)",
         "nsf": "nf.flows.nsf(2, layers=4, hidden=64, bins=8, autoregressive=True)"}
BATCH = 256


def measure(flow_name, steps):
    """In this process: (first compiled step in s, compiled ms/step, eager ms/step)."""
    import torch

    import nflesson as nf
    from nflesson.train import optimizer_and_schedule

    torch.set_num_threads(1)
    target = nf.data.get("moons")
    generator = torch.Generator().manual_seed(0)
    batches = [target.sample(BATCH, generator=generator) for _ in range(steps)]
    results = {}
    for mode in ("compiled", "eager"):
        torch.manual_seed(0)
        flow = eval(FLOWS[flow_name])
        optimizer, schedule = optimizer_and_schedule(flow.parameters(), 3e-3, steps)

        def loss_of(x):
            return -flow.log_prob(x).mean()

        loss_fn = torch.compile(loss_of) if mode == "compiled" else loss_of
        times = []
        for x in batches:
            wall, cpu = time.perf_counter(), time.process_time()
            loss = loss_fn(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
        results[mode] = (times[0][0], 1000 * statistics.median(t[1] for t in times[len(times) // 2:]))
    return results["compiled"][0], results["compiled"][1], results["eager"][1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", nargs="+", default=list(FLOWS), choices=list(FLOWS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return
    print("| flow | first compiled step, cold cache (s) | first compiled step, warm cache (s) | compiled ms/step "
          "| eager ms/step | compiled run shorter from (steps) |")
    print("|---|---:|---:|---:|---:|---:|")
    for flow_name in args.flows:
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            runs = [json.loads(subprocess.run([sys.executable, __file__, "--child", flow_name, "--steps", str(args.steps)],
                                              env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                    for _ in ("cold", "warm")]
        (cold, compiled_ms, eager_ms), (warm, compiled_warm_ms, eager_warm_ms) = runs
        compiled_ms, eager_ms = statistics.mean([compiled_ms, compiled_warm_ms]), statistics.mean([eager_ms, eager_warm_ms])
        saving = eager_ms - compiled_ms
        break_even = f"{1000 * warm / saving:,.0f} (warm), {1000 * cold / saving:,.0f} (cold)" if saving > 0 else "never"
        print(f"| {flow_name} | {cold:.1f} | {warm:.1f} | {compiled_ms:.2f} | {eager_ms:.2f} | {break_even} |", flush=True)


if __name__ == "__main__":
    main()
