"""MLflow set-up in one place: a SQLite tracking store and artifacts under the data folder."""

from __future__ import annotations

import os

from journeys.settings import Settings

EXPERIMENT = "customer_journeys"
SEGMENTATION_MODEL = "customer_journeys_segmentation"
CHURN_MODEL = "customer_journeys_churn"
HIGH_VALUE_MODEL = "customer_journeys_high_value"
CHAMPION = "champion"
CHALLENGER = "challenger"
# Logged instead of inferred: inference costs seconds per model and may try the network.
PIP_REQUIREMENTS = [
    "scikit-learn==1.9.1",
    "xgboost-cpu==3.2.0",
    "scipy==1.17.1",
    "pandas==3.1.1",
    "numpy==2.4.6",
]

# What mlflow.sklearn may deserialise (skops format) besides scikit-learn's own types.
TRUSTED_TYPES = [
    "ml.segmentation.Segmenter",
    "ml.churn.OutcomeModel",
    "ml.bgnbd.BgNbdParams",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
]


def configure(settings: Settings) -> str:
    """Point MLflow at this environment's store; return the experiment id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    import mlflow

    settings.mlflow_artifacts.mkdir(parents=True, exist_ok=True)
    if settings.mlflow_uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(settings.mlflow_uri.removeprefix("sqlite:///")), exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        experiment_id = mlflow.create_experiment(
            EXPERIMENT, artifact_location=settings.mlflow_artifacts.as_uri()
        )
    else:
        experiment_id = experiment.experiment_id
    # Active in both cases: runs started next must not fall back to ./mlruns.
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
