"""How much of a training run is spent outside its optimisation steps (snapshots, scoring,
progress bar, set-up): each training loop with its default settings against a bare loop of the
same steps (the same loss, Adam and learning-rate schedule, nothing else), in one process on one
thread, taking turns, CPU time (time.process_time), the median of a few repeats.

    .venv/bin/python benchmarks/fit_overhead.py [--repeats 5] [--steps N]

Also times what the snapshots cost when their pictures are drawn (a GIF, a player): training only
copies the parameters at each snapshot step, and the samples and density grid are drawn the first
time they are read. Runs with the loops' default steps and with 300 steps (a lesson's run), and
then writes benchmarks/fit_overhead.md and its table in README.md; ``--steps N`` runs N steps
only and writes nothing.
"""

import argparse
import contextlib
import datetime
import io
import platform
import statistics
import time

import torch
from publish import publish

import nflesson as nf
from nflesson.train import optimizer_and_schedule


def bare(flow, loss, steps, lr):
    """The optimisation steps alone: Adam with the cosine schedule on ``loss()``."""
    parameters = [p for p in flow.parameters() if p.requires_grad]
    optimizer, schedule = optimizer_and_schedule(parameters, lr, steps)
    flow.train()
    for _ in range(steps):
        value = loss()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
        value.item()
    flow.eval()


def cases(steps):
    """(name, a fresh model, the loop's default run, the bare loop) for each training loop; the run
    uses the loop's defaults but for ``steps`` (None: the loop's own default)."""
    moons, u1, eight = nf.data.get("moons"), nf.data.get("u1"), nf.data.get("eight_gaussians")
    fit_steps, fm_steps = steps or 1000, steps or 2000
    given = {} if steps is None else {"steps": steps}

    def fit_bare(flow):
        generator = torch.Generator().manual_seed(0)
        bare(flow, lambda: -flow.log_prob(moons.sample(256, generator=generator).float()).mean(), fit_steps, 3e-3)

    def kl_bare(flow):
        def loss():
            x, log_q = flow.sample_and_log_prob(256)
            return (log_q - u1.log_prob(x)).mean()
        bare(flow, loss, fit_steps, 3e-3)

    def fm_bare(flow):
        generator, continuous = torch.Generator().manual_seed(0), flow.layers[0]

        def loss():
            x = eight.sample(512, generator=generator).float()
            z, t = flow.base.sample((512,)), torch.rand(512)
            return nf.flow_matching_loss(continuous.velocity, x, z, t)
        bare(flow, loss, fm_steps, 1e-2)

    return [
        ("fit: realnvp(2) on moons", lambda: nf.flows.realnvp(2), lambda f: nf.fit(f, moons, **given), fit_bare),
        ("fit_reverse_kl: planar(2, 16 layers) on u1", lambda: nf.flows.planar(2, layers=16),
         lambda f: nf.fit_reverse_kl(f, u1, **given), kl_bare),
        ("fit_flow_matching: ContinuousFlow(2) on eight_gaussians", lambda: nf.Flow([nf.ContinuousFlow(2)]),
         lambda f: nf.fit_flow_matching(f, eight, **given), fm_bare),
    ]


def cpu_seconds(work):
    start = time.process_time()
    with contextlib.redirect_stderr(io.StringIO()):  # the progress bar runs, unseen
        result = work()
    return time.process_time() - start, result


def measure(steps, repeats):
    rows = []
    for name, make, run, plain in cases(steps):
        runs, bares, draws = [], [], []
        cpu_seconds(lambda: plain(make()))  # warm-up: a process's first runs pay for allocations
        for repeat in range(repeats):  # the run and the bare loop take turns, each first every other time
            for which in ("run", "bare") if repeat % 2 == 0 else ("bare", "run"):
                torch.manual_seed(0)
                if which == "bare":
                    bares.append(cpu_seconds(lambda: plain(make()))[0])
                    continue
                seconds, history = cpu_seconds(lambda: run(make()))
                runs.append(seconds)
                draws.append(cpu_seconds(lambda: [s.samples for s in history.snapshots])[0])
        run_s, bare_s, draw_s = statistics.median(runs), statistics.median(bares), statistics.median(draws)
        rows.append((name, len(history.losses), len(history.snapshots), run_s, bare_s, draw_s))
        print(f"{name}: {len(history.losses)} steps, run {run_s:.2f} s, bare {bare_s:.2f} s, outside the steps "
              f"{(run_s - bare_s) / run_s:.1%}; drawing its {len(history.snapshots)} snapshots later {draw_s:.2f} s",
              flush=True)
    return rows


def table(rows):
    lines = ["| training loop | steps | snapshots | run (s) | steps alone (s) | outside the steps | drawing the snapshots (s) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, steps, snapshots, run_s, bare_s, draw_s in rows:
        lines.append(f"| {name} | {steps:,} | {snapshots} | {run_s:.2f} | {bare_s:.2f} | "
                     f"{(run_s - bare_s) / run_s:.1%} | {draw_s:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, help="only runs of this many steps; nothing is written")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = measure(args.steps, args.repeats) if args.steps else measure(None, args.repeats) + measure(300, args.repeats)
    text = (f"Measured {datetime.date.today()} on one thread, CPU time, median of {args.repeats} runs, torch "
            f"{torch.__version__}, Python {platform.python_version()}.\n\n{table(rows)}")
    print(text)
    if not args.steps:
        publish("fit_overhead.md", text)


if __name__ == "__main__":
    main()
