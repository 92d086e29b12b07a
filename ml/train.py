"""Training job: segmentation, churn and high-value models, tracked, registered and judged.

The nightly run calls `train_models`; it trains only when due (no champion yet, features
changed, or the retrain cadence has come round) and otherwise returns why it skipped, with the
serving champions' figures. Each model is one MLflow run with params, metrics, plots and the
model (signature + input example), registered as a new version with the `challenger` alias and
promoted to `champion` only by ml.registry's rule; every decision lands in ml.model_decisions.
"""

from __future__ import annotations

import json
import time
from datetime import date

import numpy as np
import pandas as pd

from journeys.settings import Settings
from journeys.transform import build_training_snapshots
from journeys.warehouse import connect
from ml import bgnbd, tracking
from ml.data import LABELS, MATRIX_COLUMNS, history, labelled, load_features, model_matrix

FEATURES_TAG = json.dumps(MATRIX_COLUMNS)
TARGETS = {
    # target column -> (registered model, who is in its population)
    "churned": (tracking.CHURN_MODEL, "buyers"),
    "high_value": (tracking.HIGH_VALUE_MODEL, "everyone"),
}
SUMMARY_KEYS = {"churned": "churn", "high_value": "high_value"}


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def train_models(settings: Settings, run_date: date, force: bool = False) -> dict:
    """Train what is due for `run_date`; return a JSON-serialisable summary (trained / skipped).

    Native thread pools (OpenMP in K-Means, t-SNE, BLAS) are held to one thread: on this 2-core
    machine, next to dbt or other jobs, their spinning threads made K-Means ten times slower.
    """
    # Every native library is loaded first: a limit only reaches the pools loaded when it is set.
    import sklearn.manifold  # noqa: F401
    from threadpoolctl import threadpool_limits

    import ml.churn
    import ml.segmentation  # noqa: F401

    with threadpool_limits(limits=1):
        return _train_models(settings, run_date, force)


def _train_models(settings: Settings, run_date: date, force: bool) -> dict:
    import mlflow

    from ml import registry

    tracking.configure(settings)
    client = mlflow.MlflowClient()
    horizon = settings.churn_horizon_days
    holdout_cutoff, train_cutoff = settings.training_snapshots(run_date)
    expected_tags = {
        name: FEATURES_TAG
        for name in (tracking.SEGMENTATION_MODEL, tracking.CHURN_MODEL, tracking.HIGH_VALUE_MODEL)
    }
    with connect(settings) as con:
        due, reason = registry.training_due(
            con, client, run_date, settings.retrain_every_days, expected_tags
        )
        if force:
            due, reason = True, "training forced"
    if not due:
        return {
            "run_date": run_date.isoformat(),
            "status": "skipped",
            "reason": reason,
            **_champions_summary(client),
        }
    # The nightly transform builds the run date's features only: the cutoffs' come now.
    snapshots = build_training_snapshots(settings, run_date)
    with connect(settings) as con:
        now = load_features(con, run_date)
        at_train = labelled(con, train_cutoff, horizon, settings.high_value_share)
        at_holdout = labelled(con, holdout_cutoff, horizon, settings.high_value_share)

    started = time.perf_counter()
    summary: dict = {
        "run_date": run_date.isoformat(),
        "status": "trained",
        "reason": reason,
        "training_snapshots": snapshots,
    }
    decisions: list[registry.Decision] = []
    x_now = model_matrix(now)
    part = time.perf_counter()
    summary["segmentation"], decision = _train_segmentation(client, settings, run_date, x_now)
    summary["segmentation"]["seconds"] = round(time.perf_counter() - part, 2)
    if decision is not None:
        decisions.append(decision)
    # One BG/NBD fit of everyone at the training cutoff serves both outcome models.
    population = model_matrix(at_train)
    rhythm = bgnbd.fit(*history(population)) if len(population) else population
    for target, (name, who) in TARGETS.items():
        key = SUMMARY_KEYS[target]
        part = time.perf_counter()
        summary[key], decision = _train_outcome(
            client,
            settings,
            run_date,
            target,
            name,
            who,
            rhythm,
            at_train,
            at_holdout,
            train_cutoff,
            holdout_cutoff,
        )
        summary[key]["seconds"] = round(time.perf_counter() - part, 2)
        if decision is not None:
            decisions.append(decision)
    with connect(settings) as con:
        registry.record(con, decisions)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


# --- segmentation -------------------------------------------------------------------------------


def _train_segmentation(client, settings: Settings, run_date: date, x_now: pd.DataFrame):
    import mlflow
    from mlflow.models import infer_signature

    from ml import plots, registry
    from ml.segmentation import Segmenter, fit_segments, silhouette_on

    name = tracking.SEGMENTATION_MODEL
    champion_v, champion = registry.load_champion(client, name)
    champion_error = None
    if isinstance(champion, Exception) or (
        champion is not None and not isinstance(champion, Segmenter)
    ):
        champion_error, champion = f"{type(champion).__name__}", None
    seg = fit_segments(x_now, previous=champion)
    model = seg.model
    with mlflow.start_run(run_name=f"segmentation {run_date}") as run:
        mlflow.log_params(
            {
                "algorithm": model.algorithm,
                "k": seg.k,
                "snapshot_date": str(run_date),
                "customers": len(x_now),
                "buyers": int((x_now["frequency"] > 0).sum()),
                "features": ",".join(model.features),
                "message": model.message[:500],
            }
        )
        metrics = {f"silhouette_k{k}": s for k, s in seg.silhouette_by_k.items()}
        metrics |= {f"stability_k{k}": s for k, s in seg.stability_by_k.items()}
        if seg.silhouette is not None:
            metrics["silhouette"] = seg.silhouette
        metrics |= seg.comparisons
        metrics |= {f"size_segment_{s}": n for s, n in seg.sizes.items()}
        mlflow.log_metrics(metrics)
        named_sizes = {model.names.get(s, str(s)): n for s, n in seg.sizes.items()}
        mlflow.log_dict(
            {
                "names": model.names,
                "sizes": seg.sizes,
                "matched_to_previous": seg.matched,
                "message": model.message,
            },
            "segments.json",
        )
        if seg.profile is not None:
            _log_segment_pictures(mlflow, plots, seg, model)
        example = x_now.head(100)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=x_now.head(5),
            registered_model_name=name,
            pip_requirements=tracking.PIP_REQUIREMENTS,
            skops_trusted_types=tracking.TRUSTED_TYPES,
        )
        version = str(info.registered_model_version)
        for key, value in {
            "segment_names": json.dumps({str(k): v for k, v in model.names.items()}),
            "features": FEATURES_TAG,
            "algorithm": model.algorithm,
            "run_id": run.info.run_id,
        }.items():
            client.set_model_version_tag(name, version, key, value)

    # Judge: both segmentations of the same customers, in the challenger's feature space.
    challenger_metric = champion_metric = None
    if model.algorithm == "kmeans":
        challenger_metric = silhouette_on(model, x_now, model)
        if champion is not None:
            try:
                champion_metric = silhouette_on(champion, x_now, model)
            except Exception as e:  # noqa: BLE001 - a champion that cannot segment is replaced
                champion_error = f"{type(e).__name__}: {e}"[:200]
    promoted, why = registry.decide(
        challenger_metric, champion_metric, settings.promotion_margin, champion_error
    )
    if model.algorithm == "rules" and champion is not None and champion_error is None:
        promoted, why = False, f"{model.message}; the champion keeps serving"
    elif model.algorithm == "kmeans" and champion is not None and champion.algorithm == "rules":
        promoted, why = True, "a clustering replaces rule segments"
    decision = registry.Decision(
        run_date,
        name,
        version,
        str(champion_v.version) if champion_v else None,
        "silhouette",
        challenger_metric,
        champion_metric,
        settings.promotion_margin,
        promoted,
        why,
    )
    registry.apply(client, decision)
    summary = {
        "version": version,
        "promoted": promoted,
        "decision": why,
        "algorithm": model.algorithm,
        "message": model.message,
        "k": seg.k,
        "silhouette": _r(seg.silhouette),
        "champion_silhouette": _r(champion_metric),
        "sizes": named_sizes,
        "kept_ids": sorted(seg.matched),
        **{k: _r(v) for k, v in seg.comparisons.items()},
    }
    return summary, decision


def _log_segment_pictures(mlflow, plots, seg, model) -> None:
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from ml.segmentation import TSNE_SAMPLE

    figures = {
        "segment_profiles.png": plots.segment_profiles(seg.profile, model.names, seg.sizes, LABELS)
    }
    pca = PCA(n_components=2, random_state=7).fit_transform(seg.sample)
    figures["projection_pca.png"] = plots.projection(
        pca, seg.sample_segments, model.names, "Buyers, first two principal components"
    )
    n = min(TSNE_SAMPLE, len(seg.sample))
    if n >= 50:
        tsne = TSNE(
            n_components=2, perplexity=min(30, n // 4), init="pca", max_iter=300, random_state=7
        )
        points = tsne.fit_transform(seg.sample[:n])
        figures["projection_tsne.png"] = plots.projection(
            points, seg.sample_segments[:n], model.names, f"Buyers, t-SNE on {n} of them"
        )
    for file, fig in figures.items():
        mlflow.log_figure(fig, file)
        plt.close(fig)


# --- churn and high value -----------------------------------------------------------------------


def _train_outcome(
    client,
    settings: Settings,
    run_date: date,
    target: str,
    name: str,
    who: str,
    rhythm,
    at_train: pd.DataFrame,
    at_holdout: pd.DataFrame,
    train_cutoff: date,
    holdout_cutoff: date,
):
    import mlflow
    from mlflow.models import infer_signature

    from ml import registry
    from ml.churn import NotEnoughHistory, OutcomeModel, fit_outcome, scores_metrics

    if who == "buyers":
        train = at_train[at_train["frequency"] > 0].reset_index(drop=True)
        holdout = at_holdout[at_holdout["frequency"] > 0].reset_index(drop=True)
    else:
        train, holdout = at_train.reset_index(drop=True), at_holdout.reset_index(drop=True)
    x_train, x_holdout = model_matrix(train), model_matrix(holdout)
    try:
        result = fit_outcome(
            target,
            train,
            x_train,
            holdout,
            x_holdout,
            rhythm,
            settings.churn_horizon_days,
        )
    except NotEnoughHistory as e:
        return {"status": "not trained", "reason": str(e), **_champion_figures(client, name)}, None

    champion_v, champion = registry.load_champion(client, name)
    champion_error = champion_metrics = None
    if champion is not None:
        try:
            if not isinstance(champion, OutcomeModel):
                raise TypeError(f"{type(champion).__name__} is not an OutcomeModel")
            p_champion = champion.predict_proba(x_holdout)[:, 1]
            champion_metrics = scores_metrics(result.holdout_y, p_champion, probability=True)
        except Exception as e:  # noqa: BLE001 - a champion that cannot score is replaced
            champion_error = f"{type(e).__name__}: {e}"[:200]

    metrics = dict(result.metrics)
    for baseline, figures in result.baselines.items():
        metrics |= {f"baseline_{baseline}_{k}": v for k, v in figures.items()}
    if champion_metrics:
        metrics |= {f"champion_{k}": v for k, v in champion_metrics.items()}
    rate_key = "holdout_churn_rate" if target == "churned" else "holdout_positive_rate"
    metrics[rate_key] = result.holdout_rate
    with mlflow.start_run(run_name=f"{SUMMARY_KEYS[target]} {run_date}") as run:
        mlflow.log_params(
            {
                "algorithm": "xgboost+platt",
                "target": target,
                "population": who,
                "horizon_days": settings.churn_horizon_days,
                "train_cutoff": str(train_cutoff),
                "holdout_cutoff": str(holdout_cutoff),
                "train_rows": result.train_rows,
                "holdout_rows": result.holdout_rows,
                "trees": int(np.mean(result.model.trees_)),
                "bgnbd": json.dumps(
                    {k: round(v, 5) for k, v in result.model.bgnbd_.as_dict().items()}
                ),
                **(
                    {"high_value_share": settings.high_value_share}
                    if target == "high_value"
                    else {}
                ),
            }
        )
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None and np.isfinite(v)})
        _log_outcome_pictures(mlflow, result, SUMMARY_KEYS[target])
        example = x_holdout.head(100)
        info = mlflow.sklearn.log_model(
            result.model,
            name="model",
            signature=infer_signature(example, result.model.predict_proba(example)[:, 1]),
            input_example=x_holdout.head(5),
            registered_model_name=name,
            pip_requirements=tracking.PIP_REQUIREMENTS,
            skops_trusted_types=tracking.TRUSTED_TYPES,
        )
        version = str(info.registered_model_version)
        for key, value in {
            "holdout_auc": f"{result.metrics['auc']:.4f}",
            "features": FEATURES_TAG,
            "run_id": run.info.run_id,
        }.items():
            client.set_model_version_tag(name, version, key, value)

    promoted, why = registry.decide(
        result.metrics["auc"],
        champion_metrics["auc"] if champion_metrics else None,
        settings.promotion_margin,
        champion_error,
    )
    decision = registry.Decision(
        run_date,
        name,
        version,
        str(champion_v.version) if champion_v else None,
        "auc",
        result.metrics["auc"],
        champion_metrics["auc"] if champion_metrics else None,
        settings.promotion_margin,
        promoted,
        why,
    )
    registry.apply(client, decision)
    summary = {
        "status": "trained",
        "version": version,
        "promoted": promoted,
        "decision": why,
        **{k: _r(v) for k, v in metrics.items()},
        "beats_every_baseline": result.beats_every_baseline,
        "train_rows": result.train_rows,
        "holdout_rows": result.holdout_rows,
        "trees": int(np.mean(result.model.trees_)),
    }
    return summary, decision


def _log_outcome_pictures(mlflow, result, what: str) -> None:
    import matplotlib.pyplot as plt

    from ml import plots

    y = result.holdout_y
    probabilities = {"model": result.holdout_scores["model"]}
    probabilities |= {
        k: v
        for k, v in result.holdout_scores.items()
        if k != "model" and "brier" in result.baselines[k]
    }
    figures = {
        f"{what}_roc.png": plots.roc(y, result.holdout_scores, f"{what}: ROC on the holdout"),
        f"{what}_calibration.png": plots.calibration(
            y, probabilities, f"{what}: calibration on the holdout"
        ),
        f"{what}_importance.png": plots.importance(
            result.model.importance(), LABELS, f"{what}: feature importance"
        ),
    }
    for file, fig in figures.items():
        mlflow.log_figure(fig, file)
        plt.close(fig)


# --- skipped nights ------------------------------------------------------------------------------


def _champion_figures(client, name: str) -> dict:
    """The serving champion's version and holdout figures (what a skipped night reports)."""
    from ml import registry

    version = registry.champion_version(client, name)
    if version is None:
        return {"version": None}
    run_id = version.tags.get("run_id") or version.run_id
    if not run_id:
        return {"version": str(version.version)}
    data = client.get_run(run_id).data
    counts = {
        k: int(data.params[k])
        for k in ("train_rows", "holdout_rows", "trees", "k")
        if data.params.get(k, "").isdigit()
    }
    return {
        "version": str(version.version),
        **counts,
        **{k: _r(v) for k, v in data.metrics.items()},
    }


def _champions_summary(client) -> dict:
    out = {}
    for key, name in (
        ("segmentation", tracking.SEGMENTATION_MODEL),
        ("churn", tracking.CHURN_MODEL),
        ("high_value", tracking.HIGH_VALUE_MODEL),
    ):
        figures = _champion_figures(client, name)
        if key == "segmentation":
            figures = {k: v for k, v in figures.items() if not k.startswith("size_segment_")}
        out[key] = {"status": "champion serving", **figures}
    return out
