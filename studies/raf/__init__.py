"""The Rules-and-Facts study (Farné, Boncoraglio, Zdeborová 2026): data, learners, theory, measures.

A teacher rule labels a fraction 1 - epsilon of a Gaussian training set, random "facts" the rest.
`simulate` fits a learner on finite-d data and measures E_gen (test error against the rule), E_mem
(training error on the facts) and E_rule_train; `state_evolution` gives the same errors in the
proportional limit; `kernel_fact_split` and `two_layer_fact_location` ask where a kernel or a trained
two-layer network (`train_two_layer`, `train_two_layer_sweep`) keeps its facts; `arithmetic_bridge`
asks the same question of ReLU MLPs on modular addition with all-class label noise.

    from studies.raf import RAFSpec, simulate, state_evolution
    spec = RAFSpec(alpha=2.0, epsilon=0.2, d=400, n_test=10_000, seed=0)
    simulate(spec, "kernel", lam=1e-3, seeds=3).e_gen            # ~0.26
    state_evolution("kernel", alpha=2.0, epsilon=0.2, lam=1e-3).e_gen   # 0.2555
"""

from studies.raf.activations import RAF_ACTIVATIONS, GaussianCoefficients, gaussian_coefficients, rbf_coefficients
from studies.raf.bridge import ArithmeticBridge, arithmetic_bridge, default_bridge_config
from studies.raf.data import RAFData, make_data
from studies.raf.facts import KernelFactSplit, TwoLayerFactLocation, kernel_fact_split, two_layer_fact_location
from studies.raf.kernels import Kernel, make_kernel
from studies.raf.learners import Fit
from studies.raf.simulation import SimulationResult, simulate
from studies.raf.spec import KERNELS, LEARNERS, LOSSES, RAFSpec
from studies.raf.theory import TheoryResult, state_evolution
from studies.raf.two_layer import TwoLayerNets, train_two_layer, train_two_layer_sweep

__all__ = [
    "RAF_ACTIVATIONS",
    "ArithmeticBridge",
    "KERNELS",
    "LEARNERS",
    "LOSSES",
    "Fit",
    "GaussianCoefficients",
    "Kernel",
    "KernelFactSplit",
    "RAFData",
    "RAFSpec",
    "SimulationResult",
    "TheoryResult",
    "TwoLayerFactLocation",
    "TwoLayerNets",
    "arithmetic_bridge",
    "default_bridge_config",
    "gaussian_coefficients",
    "kernel_fact_split",
    "make_data",
    "make_kernel",
    "rbf_coefficients",
    "simulate",
    "state_evolution",
    "train_two_layer",
    "train_two_layer_sweep",
    "two_layer_fact_location",
]
