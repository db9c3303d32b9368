"""Where are the facts: the kernel's rule / lookup split, and filtration and ablation of trained two-layer nets."""

from __future__ import annotations

import pytest
import torch

from interp.train_config import TrainConfig
from studies.raf import (
    RAFSpec,
    gaussian_coefficients,
    kernel_fact_split,
    make_data,
    simulate,
    state_evolution,
    train_two_layer,
    train_two_layer_sweep,
    two_layer_fact_location,
)

EPS = 0.2
SMALL = TrainConfig(
    steps=600, lr=3e-3, weight_decay=0.0, optimizer="adam", betas=(0.9, 0.999), warmup_steps=0, eval_every=200
)


def test_kernel_predictor_splits_exactly_into_a_ridge_rule_and_a_per_sample_lookup_table():
    split = kernel_fact_split(RAFSpec(2, EPS, d=200, n_test=4000), lam=1e-3, kernel="gaussian_equivalent")
    c = gaussian_coefficients("relu")
    assert split.lam_eff == pytest.approx((1e-3 + c.mu_star**2) / c.mu1**2)
    assert split.test_sign_agreement == 1.0  # on fresh inputs the kernel IS ridge at lam_eff
    assert split.e_gen == split.e_gen_rule_part
    assert max(abs(r) for r in split.per_fact["remainder"]) < 1e-8  # nothing left over
    # every fact is memorised, and the lookup table carries most of each fact's label
    assert split.e_mem == 0.0
    assert split.fact_lookup_share > 0.5 > split.fact_rule_share > 0
    # without the lookup part the facts the rule part cannot fit are lost: as many as linear ridge at lam_eff loses
    ridge = state_evolution("linear", alpha=2, epsilon=EPS, lam=split.lam_eff)
    assert split.e_mem_rule_part == pytest.approx(ridge.e_mem, abs=0.06)
    assert split.facts_stored_by_lookup == pytest.approx(split.e_mem_rule_part)
    # rule samples lean on the rule part, facts on the lookup part
    assert split.rule_sample_rule_share > split.rule_sample_lookup_share


def test_the_lookup_table_shrinks_as_lam_grows_past_mu_star_squared():
    spec = RAFSpec(2, EPS, d=200, n_test=2000)
    shares = [
        kernel_fact_split(spec, lam=lam, kernel="gaussian_equivalent").fact_lookup_share for lam in (1e-3, 0.1, 1.0)
    ]
    assert shares[0] > shares[1] > shares[2]
    theory = [state_evolution("kernel", alpha=2, epsilon=EPS, lam=lam).e_mem for lam in (1e-3, 0.1, 1.0)]
    assert theory[0] < theory[1] < theory[2]  # less lookup, more facts lost


def test_exact_relu_kernel_is_close_to_its_gaussian_equivalent_split():
    split = kernel_fact_split(RAFSpec(2, EPS, d=200, n_test=4000), lam=1e-3, kernel="arccos")
    assert split.test_sign_agreement > 0.9
    assert abs(split.fact_remainder_share) < 0.05
    assert split.e_mem == 0.0 and split.fact_lookup_share > 0.5


def test_kernel_svm_split_uses_the_dual_coefficients():
    split = kernel_fact_split(RAFSpec(2, EPS, d=100, n_test=2000), lam=1e-3, loss="hinge", kernel="gaussian_equivalent")
    assert split.test_sign_agreement == 1.0 and split.e_mem == 0.0
    assert max(abs(r) for r in split.per_fact["remainder"]) < 1e-8


@pytest.fixture(scope="module")
def small_nets():
    """Two trained width-200 ReLU networks (d = 50, alpha = 4): every fact memorised."""
    return train_two_layer(make_data(RAFSpec(4, EPS, d=50, n_test=4000), seeds=2), 4.0, lam=0.0, config=SMALL)


def test_two_layer_network_memorises_facts_and_keeps_the_rule_in_the_teacher_direction(small_nets):
    loc = two_layer_fact_location(small_nets)
    assert loc.e_mem == [0.0, 0.0] and all(g < 0.3 for g in loc.e_gen)
    # keep only each neuron's component along the teacher: the facts are gone, the rule is kept
    assert all(m >= 0.3 for m in loc.teacher_filtered["e_mem"])
    assert all(g <= e + 0.02 for g, e in zip(loc.teacher_filtered["e_gen"], loc.e_gen))
    # remove that component: the rule is gone (chance level), the facts stay
    assert all(g > 0.4 for g in loc.teacher_residual["e_gen"])
    assert all(m <= 0.1 for m in loc.teacher_residual["e_mem"])
    # a small share of the weight norm carries the rule; the network found the teacher direction on its own
    assert all(s < 0.2 for s in loc.teacher_weight_share)
    assert all(a > 0.5 for a in loc.learned_span[1]["teacher_alignment"])
    assert loc.facts_off_teacher_direction and "orthogonal complement" in loc.verdict


def test_ablation_curves_start_at_the_full_network_and_record_both_orders(small_nets):
    loc = two_layer_fact_location(small_nets, fractions=(0.0, 0.5, 0.9))
    assert loc.ablation_fractions == [0.0, 0.5, 0.9]
    for curves in (loc.ablation_least_aligned, loc.ablation_random):
        assert [row[0] for row in curves["e_gen"]] == pytest.approx(loc.e_gen)
        assert [row[0] for row in curves["e_mem"]] == pytest.approx(loc.e_mem)
        assert all(len(row) == 3 for row in curves["e_mem"])

    # The flag: for every network, some fraction of least teacher-aligned neurons removed leaves E_mem >= 0.3
    # (facts lost) with E_gen <= E_gen(full) + 0.02 (rule kept). Written out here against the recorded curves:
    def separable(curves):
        return all(
            any(m >= 0.3 and g <= e0 + 0.02 for g, m in zip(gs, ms))
            for e0, gs, ms in zip(loc.e_gen, curves["e_gen"], curves["e_mem"])
        )

    # Here both networks reach it at 0.9: the 20 most teacher-aligned of the 200 neurons keep the rule
    # (E_gen 0.197 and 0.223 against the full 0.199 and 0.232) and lose a third of the 40 facts (E_mem 0.325
    # and 0.35). (At this size the flag depends on the data: it is False for data seeds 2-5.)
    assert loc.facts_in_separable_neurons is True and separable(loc.ablation_least_aligned)
    # The control: removing as many neurons in a random order costs the rule before it costs the facts, so
    # what separates the facts is the alignment, not the count.
    assert not separable(loc.ablation_random)
    assert all(row[-1] > e + 0.05 for row, e in zip(loc.ablation_random["e_gen"], loc.e_gen))
    assert loc.to_dict()["learned_span"]["1"]["e_gen"]


def test_batched_sweep_over_alphas_and_seeds_gives_the_same_networks_as_training_each_alone():
    specs = [RAFSpec(a, EPS, d=20, n_test=500) for a in (1, 2)]
    cfg = TrainConfig.from_dict({**SMALL.to_dict(), "steps": 50, "dtype": "float64"})
    sweeps = [
        train_two_layer_sweep([(s, 2.0) for s in specs], seeds=2, lam=1e-3, config=cfg, pad=pad)
        for pad in (False, True)
    ]
    for j, spec in enumerate(specs):
        alone = train_two_layer(make_data(spec, seeds=2), 2.0, lam=1e-3, config=cfg)
        for sweep in sweeps:  # grouped by shape, or padded into one run and masked
            # float64: the same arithmetic to rounding (in float32 Adam amplifies rounding to ~1e-3 over 200 steps)
            assert torch.allclose(sweep[j].W, alone.W, atol=1e-10) and torch.allclose(sweep[j].a, alone.a, atol=1e-10)


def test_simulate_trains_two_layer_networks_through_the_batched_engine():
    r = simulate(RAFSpec(2, EPS, d=30, n_test=1000), "two_layer", lam=0.0, kappa=4.0, seeds=2, train_config=SMALL)
    assert r.learner == "two_layer" and len(r.per_seed["e_gen"]) == 2
    assert r.e_mem == 0.0 and r.e_gen < 0.4
