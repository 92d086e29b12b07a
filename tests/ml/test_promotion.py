"""Champion / challenger: a worse challenger is refused, the decision is kept, scoring stays on
the champion, and the nightly run only retrains when due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from journeys.warehouse import connect
from ml import registry, tracking


@pytest.mark.parametrize(
    ("challenger", "champion", "error", "promoted"),
    [
        (0.80, None, None, True),  # nothing to beat
        (0.80, 0.79, None, True),  # better by more than the margin
        (0.793, 0.79, None, False),  # better, but not by the margin
        (0.70, 0.79, None, False),  # worse
        (0.70, None, "TypeError", True),  # the champion cannot be judged any more
    ],
)
def test_decision_rule(challenger, champion, error, promoted) -> None:
    assert registry.decide(challenger, champion, 0.005, error)[0] is promoted


def test_promotion_refuses_a_worse_challenger(warehouse_copy, monkeypatch) -> None:
    import mlflow

    from ml import churn
    from ml.score import score_customers
    from ml.train import train_models

    settings, run_date = warehouse_copy
    first = train_models(settings, run_date)
    assert first["status"] == "trained" and first["churn"]["promoted"]

    # The next night, nothing is due: the champion keeps serving and the summary says why.
    skipped = train_models(settings, run_date + timedelta(days=1))
    assert skipped["status"] == "skipped" and "cadence" in skipped["reason"]
    assert skipped["churn"]["version"] == first["churn"]["version"]

    # A crippled learner (stumps, a single round), trained on demand, must not take over.
    monkeypatch.setitem(churn.XGB_PARAMS, "max_depth", 1)
    monkeypatch.setitem(churn.XGB_PARAMS, "n_estimators", 1)
    second = train_models(settings, run_date, force=True)
    assert second["status"] == "trained"
    refused = second["churn"]
    assert not refused["promoted"], refused
    assert refused["auc"] < refused["champion_auc"] + settings.promotion_margin

    client = mlflow.MlflowClient()
    name = tracking.CHURN_MODEL
    assert str(client.get_model_version_by_alias(name, tracking.CHAMPION).version) == "1"
    assert str(client.get_model_version_by_alias(name, tracking.CHALLENGER).version) == "2"
    with connect(settings) as con:
        decisions = con.execute(
            "select challenger_version, champion_version, challenger_metric, champion_metric, "
            "promoted from ml.model_decisions where model_name = ? order by decided_at",
            [name],
        ).fetchall()
    assert [(d[0], d[1], d[4]) for d in decisions] == [("1", None, True), ("2", "1", False)]
    assert decisions[1][2] is not None and decisions[1][3] is not None  # both figures kept

    scored = score_customers(settings, run_date)
    assert scored["churn_model_version"] == "1"  # scoring always uses the champion
