"""The other flow libraries a user might pick instead of nflesson, built at the size of
benchmarks/compare.py's 2-D flows, each wrapped as a trainee with the same interface: ``step(x)``
(one Adam step on a float32 batch, timed in CPU time of the process), ``score(x, log_p)``
(test NLL and gap) and ``parameters`` (its count). Needs the ``bench`` extra (pip install -e
".[bench]"): zuko, nflows, normflows and FlowJAX (JAX, whose step is jit-compiled: its first
step, the compilation, is timed apart in ``compile_seconds`` and left out of ``times``).

Each library gets its own idiom for the family, at the layers and conditioner widths of
compare.py (RealNVP and MAF: 8 layers; NSF: 4 autoregressive layers of 8-bin splines on [-5, 5];
conditioners with two hidden layers of 64 ReLU units, no residual blocks): nflows'
AffineCouplingTransform with alternating masks, MaskedAffineAutoregressiveTransform and
MaskedPiecewiseRationalQuadraticAutoregressiveTransform with a ReversePermutation between layers;
normflows' AffineCouplingBlock with a swap between layers, MaskedAffineAutoregressive and the
masked spline of its AutoregressiveRationalQuadraticSpline (without residual blocks);
FlowJAX's coupling_flow and masked_autoregressive_flow (nn_depth=2, nn_width=64, its default
permutations, an Affine or RationalQuadraticSpline(knots=8, interval=5) transformer). Their
affine maps keep each library's own scale parametrisation."""

import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import torch

PEERS = ["zuko", "nflows", "normflows", "FlowJAX"]
FAMILIES = ["RealNVP", "MAF", "NSF"]


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


class TorchTrainee:
    """A PyTorch model with Adam and the schedule of nflesson.fit; ``log_prob`` scores a batch;
    each step is timed by ``clock`` (CPU time of the process by default)."""

    def __init__(self, model, log_prob, steps, lr, clock=time.process_time):
        from nflesson.train import optimizer_and_schedule

        self.model, self.log_prob, self.times, self.compile_seconds, self.clock = model, log_prob, [], None, clock
        self.optimizer, self.schedule = optimizer_and_schedule(model.parameters(), lr, steps)
        self.parameters = parameter_count(model)

    def prepare(self, x):
        return x

    def step(self, x):
        start = self.clock()
        loss = -self.log_prob(x).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        self.times.append(self.clock() - start)

    @torch.no_grad()
    def score(self, x, log_p):
        log_q = self.log_prob(x)
        return -log_q.mean().item(), (log_p - log_q).mean().item()


def _zuko(family, dim):
    import zuko

    if family == "RealNVP":
        return zuko.flows.RealNVP(dim, transforms=8, hidden_features=(64, 64))
    if family == "MAF":
        return zuko.flows.MAF(dim, transforms=8, hidden_features=(64, 64))
    return zuko.flows.NSF(dim, bins=8, transforms=4, hidden_features=(64, 64))


class _Conditioner(torch.nn.Sequential):
    """Two hidden layers of 64 ReLU units, called as nflows calls a coupling layer's network."""

    def __init__(self, n_in, n_out):
        super().__init__(torch.nn.Linear(n_in, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                         torch.nn.Linear(64, n_out))

    def forward(self, x, context=None):
        return super().forward(x)


def _nflows(family, dim):
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import (AffineCouplingTransform, CompositeTransform, MaskedAffineAutoregressiveTransform,
                                   MaskedPiecewiseRationalQuadraticAutoregressiveTransform, ReversePermutation)

    layers = []
    if family == "RealNVP":
        mask = torch.where(torch.arange(dim) < dim // 2, -1, 1)  # > 0: transformed
        for i in range(8):
            layers.append(AffineCouplingTransform(mask if i % 2 == 0 else -mask, _Conditioner))
    else:
        for i in range(8 if family == "MAF" else 4):
            if i:
                layers.append(ReversePermutation(dim))
            if family == "MAF":
                layers.append(MaskedAffineAutoregressiveTransform(dim, 64, num_blocks=1, use_residual_blocks=False))
            else:
                layers.append(MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                    dim, 64, num_bins=8, tails="linear", tail_bound=5.0, num_blocks=1, use_residual_blocks=False))
    return Flow(CompositeTransform(layers), StandardNormal([dim]))


def _normflows(family, dim):
    import normflows
    from normflows.flows.neural_spline.autoregressive import MaskedPiecewiseRationalQuadraticAutoregressive

    layers = []
    for i in range(8 if family != "NSF" else 4):
        if i:
            layers.append(normflows.flows.Permute(dim, mode="swap"))
        if family == "RealNVP":
            kept = dim // 2
            layers.append(normflows.flows.AffineCouplingBlock(
                normflows.nets.MLP([kept, 64, 64, 2 * (dim - kept)], init_zeros=True)))
        elif family == "MAF":
            layers.append(normflows.flows.MaskedAffineAutoregressive(dim, 64, num_blocks=1, use_residual_blocks=False))
        else:
            layer = normflows.flows.AutoregressiveRationalQuadraticSpline(dim, 1, 64, num_bins=8, tail_bound=5.0)
            layer.mprqat = MaskedPiecewiseRationalQuadraticAutoregressive(
                features=dim, hidden_features=64, num_bins=8, tails="linear", tail_bound=5.0, num_blocks=1,
                use_residual_blocks=False, activation=torch.nn.ReLU(), init_identity=True)
            layers.append(layer)
    return normflows.NormalizingFlow(normflows.distributions.DiagGaussian(dim, trainable=False), layers)


def torch_peer(library, family, dim, steps, lr):
    """A TorchTrainee of zuko's, nflows' or normflows' flow of the family."""
    if library == "zuko":
        model = _zuko(family, dim)
        return TorchTrainee(model, lambda x: model().log_prob(x), steps, lr)
    model = (_nflows if library == "nflows" else _normflows)(family, dim)
    return TorchTrainee(model, model.log_prob, steps, lr)


class FlowJAXTrainee:
    """FlowJAX's flow with optax's Adam (the same cosine decay to lr / 100), its step compiled by
    equinox.filter_jit; times wait for the result (block_until_ready)."""

    def __init__(self, family, dim, steps, lr, seed):
        import equinox as eqx
        import jax
        import jax.numpy as jnp
        import optax
        import paramax
        from flowjax.bijections import RationalQuadraticSpline
        from flowjax.distributions import Normal
        from flowjax.flows import coupling_flow, masked_autoregressive_flow

        self.jax, self.jnp = jax, jnp
        key = jax.random.key(seed)
        base = Normal(jnp.zeros(dim))
        if family == "RealNVP":
            flow = coupling_flow(key, base_dist=base, flow_layers=8, nn_width=64, nn_depth=2)
        elif family == "MAF":
            flow = masked_autoregressive_flow(key, base_dist=base, flow_layers=8, nn_width=64, nn_depth=2)
        else:
            flow = masked_autoregressive_flow(key, base_dist=base, flow_layers=4, nn_width=64, nn_depth=2,
                                              transformer=RationalQuadraticSpline(knots=8, interval=5.0))
        params, static = eqx.partition(flow, eqx.is_inexact_array,
                                       is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
        self.parameters = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
        optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.01))

        def loss(params, x):
            return -paramax.unwrap(eqx.combine(params, static)).log_prob(x).mean()

        @eqx.filter_jit
        def step(params, state, x):
            value, grads = eqx.filter_value_and_grad(loss)(params, x)
            updates, state = optimizer.update(grads, state, params)
            return eqx.apply_updates(params, updates), state, value

        self.log_prob = eqx.filter_jit(lambda params, x: paramax.unwrap(eqx.combine(params, static)).log_prob(x))
        self._step, self.params, self.state = step, params, optimizer.init(params)
        self.times, self.compile_seconds = [], None

    def prepare(self, x):
        return self.jnp.asarray(x.numpy())

    def step(self, x):
        start = time.process_time()
        self.params, self.state, loss = self._step(self.params, self.state, x)
        loss.block_until_ready()
        elapsed = time.process_time() - start
        if self.compile_seconds is None:
            self.compile_seconds = elapsed
        else:
            self.times.append(elapsed)

    def score(self, x, log_p):
        log_q = torch.from_numpy(self.jax.device_get(self.log_prob(self.params, self.jnp.asarray(x.numpy()))).copy())
        return -log_q.mean().item(), (log_p - log_q.to(log_p.dtype)).mean().item()


def peer(library, family, dim, steps, lr, seed):
    """The trainee of ``library``'s flow of ``family`` in ``dim`` dimensions (seeded beforehand
    with torch.manual_seed for the PyTorch libraries; FlowJAX takes the seed as its key)."""
    if library == "FlowJAX":
        return FlowJAXTrainee(family, dim, steps, lr, seed)
    return torch_peer(library, family, dim, steps, lr)
