"""The circuits tests' shared models really are in the regimes the tests rely on."""

from circuit_models import noisy_mlp, zhong_transformer


def test_fixture_models_generalise():
    from interp import evaluate

    model, task = noisy_mlp()
    m = evaluate(model, task)
    assert m["test_acc"] > 0.85 and m["train_noisy_acc"] > 0.95
    for alpha in (0.0, 1.0):
        model, task = zhong_transformer(alpha)
        assert evaluate(model, task)["test_acc"] > 0.9, alpha
