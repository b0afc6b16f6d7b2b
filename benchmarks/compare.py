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

Two more tables (``--tables peers digits``), timed in CPU time of the process (time.process_time,
steadier than the wall clock on a shared machine; every library runs on one thread):

- peers (benchmarks/compare_peers.md): RealNVP, MAF and autoregressive NSF of nflesson, zuko,
  nflows, normflows and FlowJAX (benchmarks/peers.py builds them at the same sizes) trained side
  by side on the same batches with Adam at the same learning rate and schedule, the libraries
  taking turns in a rotating order; FlowJAX's jit-compiled step is timed after its first call,
  whose time (the compilation) is reported apart.
- digits (benchmarks/compare_digits.md): realnvp and maf in 64 dimensions against zuko's RealNVP
  and MAF of the same parameter count on the 8x8 digits (800 steps of 256 training images, each
  batch freshly dequantized with the same noise for both, nflesson's LogitPixels(17) as the pixel-
  to-real map of both; at the learning rate of the other tables and at nf.fit's default), scored
  in test bits per dimension (10 draws of the dequantization noise per test image, the same for
  both).
"""

import argparse
import datetime
import os
import platform
import statistics
import time

import peers  # before torch: it sets JAX to one CPU thread
import torch
import zuko
from publish import publish

import nflesson as nf

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
PEER_TARGETS = ["moons", "checkerboard"]
PEER_DEFAULTS = {"peer_steps": 1000, "peer_seeds": [0, 1, 2], "peer_targets": PEER_TARGETS}
DIGITS_FLOWS = {
    "RealNVP": (lambda: nf.flows.realnvp(64, layers=8, hidden=64),
                lambda: zuko.flows.RealNVP(64, transforms=8, hidden_features=(64, 64))),
    "RealNVP (alternating)": (lambda: nf.flows.realnvp(64, layers=8, hidden=64, mask="alternating"),
                              lambda: zuko.flows.RealNVP(64, transforms=8, hidden_features=(64, 64))),
    "MAF": (lambda: nf.flows.maf(64, layers=8, hidden=64),
            lambda: zuko.flows.MAF(64, transforms=8, hidden_features=(64, 64))),
}
DIGITS_LRS, DIGITS_BATCH, DIGITS_DRAWS = (1e-3, 3e-3), 256, 10
DIGITS_DEFAULTS = {"digits_steps": 800, "digits_seeds": [0, 1, 2, 3, 4]}
TABLES = ["compare", "compare_conditional", "peers", "digits"]


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
        trainees = [peers.TorchTrainee(ours, ours.log_prob, steps, LR, time.perf_counter),
                    peers.TorchTrainee(theirs, lambda x: theirs().log_prob(x), steps, LR, time.perf_counter)]
    else:  # batches are pairs (x, c)
        trainees = [peers.TorchTrainee(ours, lambda pair: ours.log_prob(pair[0], context=pair[1]), steps, LR,
                                       time.perf_counter),
                    peers.TorchTrainee(theirs, lambda pair: theirs(pair[1]).log_prob(pair[0]), steps, LR,
                                       time.perf_counter)]
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


def run_peers(target_name, family, seed, steps):
    """Train the family of nflesson and of every peer side by side on the same batches; for each
    library (nflesson first) its parameter count, median ms per step, compile seconds (FlowJAX)
    and gap."""
    target = nf.data.get(target_name)
    builders = {"RealNVP": lambda: nf.flows.realnvp(2, layers=8, hidden=64),
                "MAF": lambda: nf.flows.maf(2, layers=8, hidden=64),
                "NSF": lambda: nf.flows.nsf(2, layers=4, hidden=64, bins=8, autoregressive=True)}
    torch.manual_seed(seed)
    ours = builders[family]()
    trainees = [peers.TorchTrainee(ours, ours.log_prob, steps, LR)]
    for library in peers.PEERS:
        torch.manual_seed(seed)
        trainees.append(peers.peer(library, family, 2, steps, LR, seed))
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x = target.sample(BATCH, generator=generator)
        batches = [trainee.prepare(x) for trainee in trainees]
        turn = step % len(trainees)
        for k in [*range(turn, len(trainees)), *range(turn)]:
            trainees[k].step(batches[k])
    test = target.sample(TEST_SIZE, generator=torch.Generator().manual_seed(TEST_SEED))
    log_p = target.log_prob(test)
    return [(t.parameters, 1000 * statistics.median(t.times), t.compile_seconds, t.score(test, log_p)[1])
            for t in trainees]


def peers_table(args):
    """Race nflesson against every peer, per family and target; the Markdown tables."""
    libraries = ["nflesson", *peers.PEERS]
    rows, summary = [], {}
    for family in peers.FAMILIES:
        for target_name in args.peer_targets:
            results = [run_peers(target_name, family, seed, args.peer_steps) for seed in args.peer_seeds]
            ours_ms = statistics.median(r[0][1] for r in results)
            ours_gap = [r[0][3] for r in results]
            for i, library in enumerate(libraries):
                count = results[0][i][0]
                ms = statistics.median(r[i][1] for r in results)
                gaps = [r[i][3] for r in results]
                compiled = [r[i][2] for r in results if r[i][2] is not None]
                behind = statistics.mean(ours_gap) - statistics.mean(gaps)
                summary.setdefault((family, library), []).append((ours_ms / ms, behind, count, compiled))
                rows.append(f"| {family} | {target_name} | {library} | {count:,} | {ms:.2f} | {ours_ms / ms:.2f} "
                            f"| {statistics.median(compiled):.1f} |" if compiled else
                            f"| {family} | {target_name} | {library} | {count:,} | {ms:.2f} | {ours_ms / ms:.2f} | - |")
                rows[-1] += f" {spread(gaps, 4)} | {behind:+.4f} |"
                print(rows[-1], flush=True)
    lines = []
    for (family, library), entries in summary.items():
        if library == "nflesson":
            continue
        ours_count = summary[(family, "nflesson")][0][2]
        compiled = [c for e in entries for c in e[3]]
        lines.append(f"| {family} | {library} | {ours_count:,} / {entries[0][2]:,} "
                     f"| {statistics.median(e[0] for e in entries):.2f} "
                     f"| {statistics.mean(e[1] for e in entries):+.4f} "
                     f"| {f'{statistics.median(compiled):.1f}' if compiled else '-'} |")
    return "\n".join([
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}) shared with other work, "
        f"one thread per library, CPU time of the process; torch {torch.__version__}, zuko {zuko.__version__}, "
        f"nflows {version('nflows')}, normflows {version('normflows')}, FlowJAX {version('flowjax')} "
        f"(jax {version('jax')}), Python {platform.python_version()}.",
        f"{args.peer_steps} steps of Adam (lr {LR:g}, cosine decay to lr/100), batch {BATCH}, the same batches for "
        f"every library, seeds {', '.join(map(str, args.peer_seeds))}; targets {', '.join(args.peer_targets)}. "
        "ms/step: median over seeds of the median step; ratio: nflesson's ms/step over the library's (below 1: "
        "nflesson is faster); gap: KL divergence from the target in nats on "
        f"{TEST_SIZE:,} fresh samples, mean [min, max] over seeds; nflesson behind: nflesson's mean gap minus the "
        "library's (negative: nflesson closer to the target). FlowJAX's first step compiles it (compile, in "
        "seconds, median over seeds), left out of its ms/step.",
        "",
        "| flow | peer | parameters (nflesson / peer) | ms/step ratio nflesson/peer | nflesson behind (nats, mean "
        "over targets) | peer's compile (s) |",
        "|---|---|---|---:|---:|---:|",
        *lines,
        "",
        "| flow | target | library | parameters | ms/step | ratio | compile (s) | gap (nats) | nflesson behind (nats) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])


def version(name):
    import importlib.metadata

    return importlib.metadata.version(name)


def run_digits(family, seed, steps, lr, digits, logit):
    """nflesson's and zuko's flow of the family on the digits, side by side; (ms per step, test
    bits per dimension) for each."""
    make_ours, make_zuko = DIGITS_FLOWS[family]
    torch.manual_seed(seed)
    ours = nf.Flow([*make_ours().layers, nf.LogitPixels(digits.levels)])
    torch.manual_seed(seed)
    theirs = make_zuko()

    def zuko_log_prob(y):
        z, log_det = logit.inverse(y)
        return theirs().log_prob(z) + log_det

    trainees = [peers.TorchTrainee(ours, ours.log_prob, steps, lr), peers.TorchTrainee(theirs, zuko_log_prob, steps, lr)]
    generator = torch.Generator().manual_seed(seed)
    for step in range(steps):
        rows = torch.randint(len(digits.train), (DIGITS_BATCH,), generator=generator)
        y = nf.dequantize(digits.train[rows], generator)
        for trainee in trainees if step % 2 == 0 else trainees[::-1]:
            trainee.step(y)
    noise = torch.Generator().manual_seed(TEST_SEED)
    draws = [nf.dequantize(digits.test, noise) for _ in range(DIGITS_DRAWS)]
    with torch.no_grad():
        return [(1000 * statistics.median(t.times),
                 nf.bits_per_dim(-torch.stack([t.log_prob(y) for y in draws]).mean().item())) for t in trainees]


def digits_table(args):
    """nflesson against zuko in 64 dimensions on the digits; the Markdown table."""
    digits, logit = nf.data.digits(), nf.LogitPixels(17)
    rows, verdicts = [], []
    for family in DIGITS_FLOWS:
        for lr in DIGITS_LRS:
            results = [run_digits(family, seed, args.digits_steps, lr, digits, logit) for seed in args.digits_seeds]
            ours_ms, zuko_ms = (statistics.median(r[k][0] for r in results) for k in (0, 1))
            ours, theirs = ([r[k][1] for r in results] for k in (0, 1))
            verdicts.append(verdict(ours, theirs) if len(results) > 1 else "one seed")
            sd = (lambda v: f" sd {statistics.stdev(v):.4f}") if len(results) > 1 else (lambda v: "")
            rows.append(f"| {family} | {lr:g} | {spread(ours, 4)}{sd(ours)} | {spread(theirs, 4)}{sd(theirs)} "
                        f"| {statistics.mean(ours) - statistics.mean(theirs):+.4f} | {ours_ms:.2f} | {zuko_ms:.2f} "
                        f"| {ours_ms / zuko_ms:.2f} | {verdicts[-1]} |")
            print(rows[-1], flush=True)
    counts = "; ".join(f"{name} {peers.parameter_count(ours()):,} (nflesson) and {peers.parameter_count(theirs()):,} "
                       f"(zuko)" for name, (ours, theirs) in DIGITS_FLOWS.items())
    return "\n".join([
        f"Measured {datetime.date.today()} on {os.cpu_count()} CPU cores ({platform.machine()}) shared with other work, "
        f"one thread, CPU time of the process; torch {torch.__version__}, zuko {zuko.__version__}, Python "
        f"{platform.python_version()}.",
        f"The 8x8 digits (64 dimensions, 1,000 training images): {args.digits_steps} steps of Adam (cosine decay to "
        f"lr/100), batch {DIGITS_BATCH} freshly dequantized, seeds {', '.join(map(str, args.digits_seeds))}; "
        f"test bits/dim of the 500 test images ({DIGITS_DRAWS} draws of the dequantization noise), mean [min, max] "
        f"and standard deviation over seeds. Parameters: {counts}.",
        "",
        "| flow | lr | nflesson bits/dim | zuko bits/dim | difference | nflesson ms/step | zuko ms/step | ratio "
        "| nflesson's bits/dim |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "nflesson's bits/dim: " + ", ".join(f"{name} in {verdicts.count(name)}" for name in dict.fromkeys(verdicts))
        + f" of {len(rows)} rows (tied: higher, by less than twice the standard error of the difference over the "
        "seeds).",
    ])


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
    parser.add_argument("--tables", nargs="+", default=TABLES, choices=TABLES,
                        help="which tables to make (compare: the unconditional flows against zuko; "
                        "compare_conditional; peers: every library in 2-D; digits: 64-D against zuko)")
    parser.add_argument("--peer-steps", type=int, default=PEER_DEFAULTS["peer_steps"])
    parser.add_argument("--peer-seeds", type=int, nargs="+", default=PEER_DEFAULTS["peer_seeds"])
    parser.add_argument("--peer-targets", nargs="+", default=PEER_TARGETS, choices=nf.data.names())
    parser.add_argument("--digits-steps", type=int, default=DIGITS_DEFAULTS["digits_steps"])
    parser.add_argument("--digits-seeds", type=int, nargs="+", default=DIGITS_DEFAULTS["digits_seeds"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "peers" in args.tables:
        table = peers_table(args)
        print(table)
        if all(getattr(args, name) == value for name, value in PEER_DEFAULTS.items()):
            publish("compare_peers.md", table)
    if "digits" in args.tables:
        table = digits_table(args)
        print(table)
        if all(getattr(args, name) == value for name, value in DIGITS_DEFAULTS.items()):
            publish("compare_digits.md", table)
    defaults = all(getattr(args, name) == parser.get_default(name) for name in ("steps", "seeds"))
    groups = [  # (file, flows, targets, what the gap is, parameter counts, whether the targets are the defaults)
        ("compare.md", FLOWS, args.targets, "the KL divergence from the target",
         {name: [peers.parameter_count(make()) for make in pair] for name, pair in FLOWS.items()},
         args.targets == TARGETS),
        ("compare_conditional.md", CONDITIONAL_FLOWS, args.conditional_targets,
         "E_c KL(p(. | c) || q(. | c)) over the target's contexts (from test pairs)",
         {f"{name} (context of width 1)": [peers.parameter_count(make(1)) for make in pair]
          for name, pair in CONDITIONAL_FLOWS.items()},
         args.conditional_targets == CONDITIONAL_TARGETS),
    ]
    for file, group, targets, gap, counts, default_targets in groups:
        names = [name for name in args.flows if name in group] if file[:-3] in args.tables else []
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
