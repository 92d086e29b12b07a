"""Training job: segmentation and churn models for a run date, tracked and registered in MLflow."""

from __future__ import annotations

import json
from datetime import date, timedelta

from journeys.settings import Settings
from journeys.warehouse import connect
from ml import tracking
from ml.data import churn_labels, load_features, model_matrix


def _register(client, name: str, version: str, tags: dict[str, str]) -> None:
    """Tag the new version and make it the champion.

    The walking skeleton promotes every new version; champion/challenger comparison on a
    shared holdout replaces this in the models issue.
    """
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, tracking.CHAMPION, version)


def train_models(settings: Settings, run_date: date) -> dict:
    import mlflow
    from mlflow.models import infer_signature

    from ml.churn import fit_churn
    from ml.segmentation import SEGMENT_FEATURES, fit_segments

    tracking.configure(settings)
    client = mlflow.MlflowClient()
    horizon = settings.churn_horizon_days
    train_cutoff = run_date - timedelta(days=2 * horizon)
    holdout_cutoff = run_date - timedelta(days=horizon)
    with connect(settings) as con:
        now = load_features(con, run_date)
        at_train = load_features(con, train_cutoff).merge(
            churn_labels(con, train_cutoff, horizon), on="customer_id"
        )
        at_holdout = load_features(con, holdout_cutoff).merge(
            churn_labels(con, holdout_cutoff, horizon), on="customer_id"
        )

    summary: dict = {"run_date": run_date.isoformat()}

    x_now = model_matrix(now)[SEGMENT_FEATURES]
    with mlflow.start_run(run_name=f"segmentation {run_date}") as run:
        seg = fit_segments(x_now)
        mlflow.log_params(
            {
                "algorithm": "kmeans",
                "k": seg.k,
                "snapshot_date": str(run_date),
                "customers": len(x_now),
                "features": ",".join(SEGMENT_FEATURES),
            }
        )
        mlflow.log_metrics({f"silhouette_k{k}": s for k, s in seg.silhouette_by_k.items()})
        mlflow.log_metric("silhouette", seg.silhouette_by_k[seg.k])
        mlflow.log_dict({"names": seg.names, "sizes": seg.sizes}, "segments.json")
        info = mlflow.sklearn.log_model(
            seg.model,
            name="model",
            signature=infer_signature(x_now.head(100), seg.model.predict(x_now.head(100))),
            input_example=x_now.head(5),
            registered_model_name=tracking.SEGMENTATION_MODEL,
            pip_requirements=tracking.PIP_REQUIREMENTS,
        )
        version = str(info.registered_model_version)
        _register(
            client,
            tracking.SEGMENTATION_MODEL,
            version,
            {"segment_names": json.dumps(seg.names), "run_id": run.info.run_id},
        )
    summary["segmentation"] = {
        "version": version,
        "k": seg.k,
        "silhouette": round(seg.silhouette_by_k[seg.k], 4),
        "sizes": {seg.names[c]: n for c, n in seg.sizes.items()},
    }

    # Churn is defined for customers who have bought: a prospect cannot stop buying.
    train = at_train[at_train["frequency"] > 0]
    holdout = at_holdout[at_holdout["frequency"] > 0]
    x_train, x_holdout = model_matrix(train), model_matrix(holdout)
    with mlflow.start_run(run_name=f"churn {run_date}") as run:
        churn = fit_churn(x_train, train["churned"], x_holdout, holdout["churned"])
        mlflow.log_params(
            {
                "algorithm": "xgboost",
                "horizon_days": horizon,
                "train_cutoff": str(train_cutoff),
                "holdout_cutoff": str(holdout_cutoff),
                "train_rows": churn.train_rows,
                "holdout_rows": churn.holdout_rows,
                **{
                    f"xgb_{k}": v
                    for k, v in churn.model.get_params().items()
                    if k in ("n_estimators", "max_depth", "learning_rate")
                },
            }
        )
        mlflow.log_metrics(churn.metrics)
        info = mlflow.xgboost.log_model(
            churn.model,
            name="model",
            signature=infer_signature(
                x_holdout.head(100), churn.model.predict_proba(x_holdout.head(100))[:, 1]
            ),
            input_example=x_holdout.head(5),
            registered_model_name=tracking.CHURN_MODEL,
            pip_requirements=tracking.PIP_REQUIREMENTS,
        )
        version = str(info.registered_model_version)
        _register(
            client,
            tracking.CHURN_MODEL,
            version,
            {"holdout_auc": f"{churn.metrics['auc']:.4f}", "run_id": run.info.run_id},
        )
    summary["churn"] = {
        "version": version,
        **{k: round(v, 4) for k, v in churn.metrics.items()},
        "train_rows": churn.train_rows,
        "holdout_rows": churn.holdout_rows,
    }
    return summary
