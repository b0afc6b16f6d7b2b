"""nflesson against zuko, side by side in one process: RealNVP and MAF of zuko's size (8 layers,
conditioners with two hidden layers of 64) and neural spline flows (4 layers of 8-bin
rational-quadratic splines, autoregressive as zuko's NSF, and coupling as zuko's NSF with
passes=2; the same conditioners) trained by maximum likelihood on four 2D targets. Both
libraries' splines live on [-5, 5] (each library's default). zuko's coupling conditioner
is a masked network that counts its masked-out weights; nflesson's sees only the kept half, so
it has fewer parameters for the same layers. The conditional rows race the autoregressive NSF
conditioned on c (nflesson's `context=k`, zuko's second argument) on the course's conditional
targets, trained on pairs (x, c); their gap is E_c KL(p(. | c) || q(. | c)), from the exact
log p(x | c) of test pairs.

    .venv/bin/python benchmarks/compare.py [--steps 2000] [--seeds 0 1 2 3 4] [--targets moons ...]

Both libraries get the same everything: parameter initialisation seed, training batches (512
fresh samples per step, drawn once and given to both), steps, optimizer and learning-rate
schedule (nflesson.train.optimizer_and_schedule, as in nflesson.fit), one CPU thread. The steps
are interleaved, nflesson first on even steps and zuko first on odd ones, so that a slow spell of
the machine hits both. A step (loss, backward, optimizer step) is timed on its own; the data
draw is not. After training, each model is scored on 20,000 fresh samples x: the test NLL
-mean log q(x), and the gap KL(p || q), estimated as mean(log p(x) - log q(x)) with the target's
exact log p. That is NLL - entropy in expectation, but without the noise of the test sample's
own -mean log p(x) (about 0.007 nats here), so rows that differ by less than that can be told
apart.

Every run is repeated with five seeds; a row reports the median over seeds of the median step
time, and the mean gap with its range over the seeds. Needs zuko: pip install -e ".[bench]".
Prints a Markdown table for the unconditional flows and one for the conditional ones; a run with
the default steps, seeds and targets of a table's flows (all of them) also writes it to
benchmarks/compare.md or benchmarks/compare_conditional.md, and into README.md.
"""

import argparse
import datetime
import os
import platform
import statistics
import time

import torch
import zuko
from publish import publish

import nflesson as nf
from nflesson.train import optimizer_and_schedule

TARGETS = ["moons", "eight_gaussians", "checkerboard", "banana"]
FLOWS = {
    "RealNVP": (lambda: nf.flows.realnvp(2, layers=8, hidden=64),
                lambda: zuko.flows.RealNVP(2, transforms=8, hidden_features=(64, 64))),
    "MAF": (lambda: nf.flows.maf(2, layers=8, hidden=64),
            lambda: zuko.flows.MAF(2, transforms=8, hidden_features=(64, 64))),
    "NSF": (lambda: nf.flows.nsf(2, layers=4, hidden=64, bins=8, autoregressive=True),
            lambda: zuko.flows.NSF(2, bins=8, transforms=4, hidden_features=(64, 64))),
    "NSF coupling": (lambda: nf.flows.nsf(2, layers=4, hidden=64, bins=8),
                     lambda: zuko.flows.NSF(2, bins=8, transforms=4, hidden_features=(64, 64), passes=2)),
}
CONDITIONAL_TARGETS = nf.data.conditional_names()
CONDITIONAL_FLOWS = {  # the flow given the width k of the context
    "NSF conditional": (lambda k: nf.flows.nsf(2, layers=4, hidden=64, bins=8, autoregressive=True, context=k),
                        lambda k: zuko.flows.NSF(2, k, bins=8, transforms=4, hidden_features=(64, 64))),
}
LR, BATCH, TEST_SIZE, TEST_SEED = 1e-3, 512, 20_000, 12345


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


class Trainee:
    """One model with its optimizer, its loss and the times of its steps."""

    def __init__(self, model, log_prob, steps):
        self.model, self.log_prob, self.times = model, log_prob, []
        self.optimizer, self.schedule = optimizer_and_schedule(model.parameters(), LR, steps)

    def step(self, x):
        start = time.perf_counter()
        loss = -self.log_prob(x).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        self.times.append(time.perf_counter() - start)

    @torch.no_grad()
    def score(self, x, log_p):
        """(test NLL, gap): gap = mean(log p(x) - log q(x)) estimates KL(p || q)."""
        log_q = self.log_prob(x)
        return -log_q.mean().item(), (log_p - log_q).mean().item()


def makers(flow_name, target):
    """nflesson's and zuko's constructors of the flow, for a conditional target's context width."""
    if flow_name in FLOWS:
        return FLOWS[flow_name]
    k = target.context_size
    return [lambda make=make: make(k) for make in CONDITIONAL_FLOWS[flow_name]]


def run(target_name, flow_name, seed, steps):
    """Train nflesson's and zuko's flow side by side; (ms per step, test NLL, gap) for each. On a
    conditional target, batches and test sets are pairs (x, c) and both flows score log q(x | c)."""
    target = nf.data.get(target_name)
    make_ours, make_zuko = makers(flow_name, target)
    torch.manual_seed(seed)
    ours = make_ours()
    torch.manual_seed(seed)
    theirs = make_zuko()
    if flow_name in FLOWS:
        trainees = [Trainee(ours, ours.log_prob, steps), Trainee(theirs, lambda x: theirs().log_prob(x), steps)]
    else:  # batches are pairs (x, c)
        trainees = [Trainee(ours, lambda pair: ours.log_prob(pair[0], context=pair[1]), steps),
                    Trainee(theirs, lambda pair: theirs(pair[1]).log_prob(pair[0]), steps)]
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x = target.sample(BATCH, generator=generator)
        for trainee in trainees if step % 2 == 0 else trainees[::-1]:
            trainee.step(x)
    test = target.sample(TEST_SIZE, generator=torch.Generator().manual_seed(TEST_SEED))
    log_p = target.log_prob(test) if flow_name in FLOWS else target.log_prob(*test)
    return [(1000 * statistics.median(t.times), *t.score(test, log_p)) for t in trainees]


def verdict(ours, theirs):
    """How nflesson's gaps compare with zuko's over the seeds: "ahead" (lower mean), "tied" (higher
    mean, but by less than twice the standard error of the difference of the means), "behind"."""
    difference = statistics.mean(ours) - statistics.mean(theirs)
    if difference <= 0:
        return "ahead"
    error = (statistics.variance(ours) / len(ours) + statistics.variance(theirs) / len(theirs)) ** 0.5
    return "tied" if difference < 2 * error else "behind"


def spread(values, digits):
    """'mean [min, max]' of the values, or the value alone when there is one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--targets", nargs="+", default=TARGETS, choices=nf.data.names(),
                        help="the targets of the unconditional flows")
    parser.add_argument("--conditional-targets", nargs="+", default=CONDITIONAL_TARGETS, choices=CONDITIONAL_TARGETS,
                        help="the targets of the conditional flows")
    parser.add_argument("--flows", nargs="+", default=[*FLOWS, *CONDITIONAL_FLOWS],
                        choices=[*FLOWS, *CONDITIONAL_FLOWS])
    args = parser.parse_args()
    torch.set_num_threads(1)
    defaults = all(getattr(args, name) == parser.get_default(name) for name in ("steps", "seeds"))
    groups = [  # (file, flows, targets, what the gap is, parameter counts, whether the targets are the defaults)
        ("compare.md", FLOWS, args.targets, "the KL divergence from the target",
         {name: [parameter_count(make()) for make in pair] for name, pair in FLOWS.items()},
         args.targets == TARGETS),
        ("compare_conditional.md", CONDITIONAL_FLOWS, args.conditional_targets,
         "E_c KL(p(. | c) || q(. | c)) over the target's contexts (from test pairs)",
         {f"{name} (context of width 1)": [parameter_count(make(1)) for make in pair]
          for name, pair in CONDITIONAL_FLOWS.items()},
         args.conditional_targets == CONDITIONAL_TARGETS),
    ]
    for file, group, targets, gap, counts, default_targets in groups:
        names = [name for name in args.flows if name in group]
        if names:
            table = race(names, targets, args, gap, counts)
            print(table)
            if defaults and default_targets and names == list(group):
                publish(file, table)


def race(flow_names, target_names, args, gap, counts):
    """Race the flows on the targets (every seed); the Markdown table of the results."""
    rows, ratios, verdicts = [], [], []
    for flow_name in flow_names:
        for target_name in target_names:
            results = [run(target_name, flow_name, seed, args.steps) for seed in args.seeds]
            ours_ms = statistics.median(r[0][0] for r in results)
            zuko_ms = statistics.median(r[1][0] for r in results)
            ours_nll, zuko_nll = [r[0][1] for r in results], [r[1][1] for r in results]
            ours_gap, zuko_gap = [r[0][2] for r in results], [r[1][2] for r in results]
            ratios.append(ours_ms / zuko_ms)
            verdicts.append(verdict(ours_gap, zuko_gap) if len(results) > 1 else "one seed")
            rows.append(
                f"| {flow_name} | {target_name} | {ours_ms:.2f} | {zuko_ms:.2f} | {ratios[-1]:.2f} "
                f"| {statistics.mean(ours_nll):.3f} | {statistics.mean(zuko_nll):.3f} "
                f"| {spread(ours_gap, 4)} | {spread(zuko_gap, 4)} | {verdicts[-1]} |"
            )
            print(rows[-1], flush=True)
    return "\n".join([
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}), one thread, "
        f"torch {torch.__version__}, zuko {zuko.__version__}, Python {platform.python_version()}.",
        f"{args.steps} steps of Adam (lr {LR:g}, cosine decay to lr/100), batch {BATCH}, seeds "
        f"{', '.join(map(str, args.seeds))}. NLL: mean over seeds of the test NLL on {TEST_SIZE:,} fresh "
        f"samples; gap: mean [min, max] over seeds of {gap}, in nats.",
        "Parameters: " + "; ".join(f"{name} {ours:,} (nflesson) and {theirs:,} (zuko)"
                                   for name, (ours, theirs) in counts.items()) + ".",
        "",
        "| flow | target | nflesson ms/step | zuko ms/step | ratio | nflesson NLL | zuko NLL "
        "| nflesson gap (nats) | zuko gap (nats) | nflesson's gap |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        f"Median step-time ratio nflesson/zuko: {statistics.median(ratios):.2f}. nflesson's gap: "
        + ", ".join(f"{name} in {verdicts.count(name)}" for name in dict.fromkeys(verdicts)) + f" of {len(rows)} rows "
        "(tied: a higher mean gap, by less than twice the standard error of the difference over the seeds).",
    ])

if __name__ == "__main__":
    main()
