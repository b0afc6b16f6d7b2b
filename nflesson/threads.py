"""CPU threads for the course's small models."""

import contextlib

import torch


@contextlib.contextmanager
def one_thread():
    """Run the block on one CPU thread (the setting is restored afterwards): the course's flows
    are small, and splitting their little matrix products across threads costs more than it
    saves (benchmarks/lessons.py); an ODE solve, thousands of tiny operations, can run ten times
    slower on two threads of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
