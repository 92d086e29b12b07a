"""Judge the warehouse against the sample generator's ground truth.

- identity: pairwise precision / recall / F1 over source records (CRM records, shop orders,
  store receipts with a loyalty card, web cookies that logged in): a pair is predicted when
  both records carry the same customer_id, true when both belong to the same person. Computed
  from cluster sizes (sum of n·(n−1)/2 per cell), never by enumerating pairs. Records nothing
  identifies (anonymous receipts, cookies that never logged in) and cookies of a shared family
  computer (two people) are left out. over_merge: the share of CRM-record pairs of different
  people sharing an identifier (e-mail, phone, card) that were merged.
- churn: AUC of the published churn_probability against the realised label in the horizon
  after the snapshot, next to the oracle that knows each person's latent state and the
  purchases-only optimum (BG/NBD with the true population parameters) on the same people.
- segments: adjusted Rand index between published segments and the true archetypes, next to
  the archetype ceiling: the ARI a classifier trained WITH the true archetypes reaches from the
  same snapshot features (cross-validated, on a sample). No unsupervised segmentation can be
  expected above it, so it says how far the archetypes are recoverable from behaviour at all.

Each customer is judged as the person most of its records belong to.
"""

from __future__ import annotations

from datetime import date

import duckdb

from journeys.identity.rules import email_key_sql
from journeys.settings import Settings
from journeys.warehouse import table_exists

RECORDS_SQL = """
with predicted as (
    select 'crm' as source, source_key, customer_id
    from marts.customer_identifiers where source = 'crm'
    union all
    select 'web_cookie', source_key, customer_id
    from marts.customer_identifiers where source = 'web_cookie'
    union all
    select case channel when 'online' then 'shop_order' else 'pos_receipt' end,
           order_id, customer_id
    from marts.fct_orders
),
truth as (
    select source, source_key, person_id from read_parquet(?)
    where (source, role) in (
        ('crm', 'primary'), ('crm', 'duplicate'), ('crm', 'married_name'),
        ('shop_order', 'purchase'), ('shop_order', 'not_a_purchase'),
        ('pos_receipt', 'loyalty_card'),
        ('web_cookie', 'primary_device'), ('web_cookie', 'second_device')
    )
)
select truth.source, truth.source_key, truth.person_id,
       -- a record the pipeline did not link to anyone is a cluster of its own
       coalesce(predicted.customer_id, 'unlinked:' || truth.source || ':' || truth.source_key)
           as customer_id
from truth left join predicted using (source, source_key)
-- a cookie that never logged in carries nothing that names a person: no system can link it
where truth.source <> 'web_cookie' or truth.source_key in (
    select anonymous_id from staging.stg_web__events
    where user_email is not null or crm_id is not null
)
"""

# CRM records of different people that share an identifier (a household e-mail, a couple's
# landline, a role mailbox): the pairs an identity graph is most tempted to merge.
SHARED_IDENTIFIER_PAIRS_SQL = """
with crm as (
    select r.source_key as crm_id, r.person_id, r.customer_id, c.email, c.phone, c.loyalty_card_id
    from evaluation_records r
    join staging.stg_crm__customers c on c.crm_id = r.source_key
    where r.source = 'crm'
),
keys as (
    select crm_id, person_id, customer_id, 'email' as kind, {email_key} as value from crm
    where email is not null
    union all
    select crm_id, person_id, customer_id, 'phone', phone from crm where phone is not null
    union all
    select crm_id, person_id, customer_id, 'card', loyalty_card_id from crm
    where loyalty_card_id is not null
)
select count(distinct (a.crm_id, b.crm_id)) as pairs,
       count(distinct (a.crm_id, b.crm_id)) filter (where a.customer_id = b.customer_id) as merged
from keys a join keys b
    on a.kind = b.kind and a.value = b.value and a.crm_id < b.crm_id
    and a.person_id <> b.person_id
"""


def _pairs(n: str) -> str:
    return f"sum({n} * ({n} - 1) / 2)"


def identity_metrics(con: duckdb.DuckDBPyConnection) -> dict:
    cells = f"""
        with cells as (
            select customer_id, person_id, count(*) as n from evaluation_records group by all
        )
        select
            (select {_pairs("n")} from cells) as together_both,
            (select {_pairs("n")} from (select count(*) as n from evaluation_records
                                         group by customer_id)) as together_predicted,
            (select {_pairs("n")} from (select count(*) as n from evaluation_records
                                         group by person_id)) as together_true,
            (select count(*) from evaluation_records) as records
    """
    both, predicted, true, records = con.execute(cells).fetchall()[0]
    pairs, merged = con.execute(
        SHARED_IDENTIFIER_PAIRS_SQL.format(email_key=email_key_sql("email"))
    ).fetchall()[0]
    precision = float(both / predicted) if predicted else 1.0
    recall = float(both / true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "over_merge": round(merged / pairs, 4) if pairs else 0.0,
        "shared_identifier_pairs": int(pairs),
        "records": int(records),
    }


def evaluate(settings: Settings) -> dict:
    """Read the published warehouse (read-only) and the truth; return every figure."""
    from sklearn.metrics import adjusted_rand_score, roc_auc_score

    from journeys.sample.truth import churn_truth, purchase_optimum

    record_map = str(settings.truth / "record_map.parquet")
    persons = str(settings.truth / "persons.parquet")
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        con.execute(f"create temp table evaluation_records as {RECORDS_SQL}", [record_map])
        identity = identity_metrics(con)
        customers = con.execute(
            f"""
            with cells as (
                select customer_id, person_id, count(*) as n
                from evaluation_records group by customer_id, person_id
            ),
            votes as (
                select customer_id, person_id,
                       row_number() over (partition by customer_id
                                          order by n desc, person_id) as rank
                from cells
            )
            select segments.customer_id, segments.snapshot_date, segments.segment_id,
                   segments.churn_probability, {_high_value_column(con)} as high_value_probability,
                   votes.person_id, persons.archetype,
                   coalesce(features.frequency, 0) as frequency
            from marts.customer_segments as segments
            join votes on votes.customer_id = segments.customer_id and votes.rank = 1
            left join marts.customer_features as features
                on features.customer_id = segments.customer_id
                and features.snapshot_date = segments.snapshot_date
            join read_parquet('{persons}') as persons using (person_id)
            """
        ).df()
        stability = run_to_run_stability(con)
        ceiling = archetype_ceiling(con, customers)
    finally:
        con.close()
    if customers.empty:
        raise ValueError("no published customer could be matched to the truth")

    snapshot: date = customers["snapshot_date"].iloc[0]
    if hasattr(snapshot, "date"):
        snapshot = snapshot.date()
    horizon = settings.churn_horizon_days
    scored = customers.dropna(subset=["churn_probability"])
    # One customer per person: when several customers map to one person, keep the first.
    scored = scored.drop_duplicates("person_id")
    labels = churn_truth(settings.truth, snapshot, horizon).merge(
        purchase_optimum(settings.truth, snapshot, horizon)[
            ["person_id", "probability_no_purchase"]
        ],
        on="person_id",
    )
    judged = scored.merge(labels, on="person_id")
    churn = {
        "snapshot_date": snapshot.isoformat(),
        "horizon_days": horizon,
        "customers": len(judged),
        "churn_rate": round(float(judged["churned"].mean()), 4),
    }
    if judged["churned"].nunique() == 2:
        churn |= {
            "auc": round(float(roc_auc_score(judged["churned"], judged["churn_probability"])), 4),
            "oracle_auc": round(
                float(roc_auc_score(judged["churned"], judged["oracle_probability"])), 4
            ),
            "purchase_optimum_auc": round(
                float(roc_auc_score(judged["churned"], judged["probability_no_purchase"])), 4
            ),
        }
    segments = {
        "ari": round(
            float(adjusted_rand_score(customers["archetype"], customers["segment_id"])), 4
        ),
        "customers": len(customers),
        "segments": int(customers["segment_id"].nunique()),
        **_partial_aris(customers),
        **ceiling,
        **stability,
    }
    high_value = high_value_metrics(settings, customers, snapshot, horizon)
    return {
        "identity": identity,
        "churn": churn,
        "segments": segments,
        **({"high_value": high_value} if high_value else {}),
    }


CEILING_SAMPLE = 20_000  # customers the supervised archetype ceiling is cross-validated on


def archetype_ceiling(con: duckdb.DuckDBPyConnection, customers) -> dict:
    """ARI of a supervised classifier that KNOWS the archetypes, from the snapshot's features.

    Gradient-boosted trees, 3-fold cross-validated predictions over every numeric column of
    marts.customer_features and the category mix at the published snapshot (a sample of at
    most CEILING_SAMPLE customers). An upper reference for the unsupervised segments, not a
    model we publish.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_predict

    from ml.data import category_mix

    snapshot = customers["snapshot_date"].iloc[0]
    features = con.execute(
        "select * from marts.customer_features where snapshot_date = ?", [snapshot]
    ).df()
    if table_exists(con, "marts", "customer_category_mix"):  # absent in older warehouses
        features = features.merge(category_mix(con, snapshot), on="customer_id", how="left")
    judged = customers[["customer_id", "archetype", "segment_id"]].merge(features, on="customer_id")
    # Nothing to cross-validate (e.g. features already built for a day not yet published), or
    # an archetype too rare for three folds: no ceiling rather than a crash.
    counts = judged["archetype"].value_counts()
    if counts.empty or counts.min() < 3:
        return {}
    judged = judged.sample(min(CEILING_SAMPLE, len(judged)), random_state=0)
    x = judged.drop(columns=["segment_id"]).select_dtypes("number")
    predicted = cross_val_predict(
        HistGradientBoostingClassifier(max_iter=60, random_state=0),
        x.to_numpy(dtype="float64"),
        judged["archetype"],
        cv=3,
    )
    bought = judged["frequency"].to_numpy() > 0
    return {
        "archetype_ceiling_ari": round(
            float(adjusted_rand_score(judged["archetype"], predicted)), 4
        ),
        "archetype_ceiling_buyers_ari": round(
            float(adjusted_rand_score(judged["archetype"][bought], predicted[bought])), 4
        ),
    }


def _partial_aris(customers) -> dict:
    """ARI over parts of the customers: buyers_ari over those who bought by the snapshot,
    clustered_ari over those in a K-Means segment (ids from FIRST_CLUSTER_ID: buyers and the
    prospects matched to them), with the share of customers in a rule segment."""
    from sklearn.metrics import adjusted_rand_score

    from ml.segmentation import FIRST_CLUSTER_ID

    out: dict = {}
    for key, part in (
        ("buyers_ari", customers[customers["frequency"] > 0]),
        ("clustered_ari", customers[customers["segment_id"] >= FIRST_CLUSTER_ID]),
    ):
        out[key] = (
            round(float(adjusted_rand_score(part["archetype"], part["segment_id"])), 4)
            if len(part)
            else None
        )
    out["rule_segment_share"] = round(float((customers["segment_id"] < FIRST_CLUSTER_ID).mean()), 4)
    return out


def _high_value_column(con: duckdb.DuckDBPyConnection) -> str:
    """The published high-value probability, or null on a warehouse published without it."""
    present = con.execute(
        "select count(*) from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'customer_segments' and column_name = 'high_value_probability'"
    ).fetchall()[0][0]
    return "segments.high_value_probability" if present else "cast(null as double)"


def run_to_run_stability(con: duckdb.DuckDBPyConnection) -> dict:
    """Segments of the two latest published dates (marts.customer_segments_history) compared.

    run_to_run_ari: adjusted Rand index of the two assignments over customers in both (the
    partition, whatever the ids); run_to_run_same_id: share of them keeping their segment id.
    Empty when fewer than two dates were published.
    """
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'customer_segments_history'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    pairs = con.execute(
        """
        with dates as (
            select distinct snapshot_date from marts.customer_segments_history
            order by snapshot_date desc limit 2
        )
        select previous.segment_id as before, latest.segment_id as after,
               previous.snapshot_date as previous_date
        from marts.customer_segments_history as latest
        inner join marts.customer_segments_history as previous using (customer_id)
        where latest.snapshot_date = (select max(snapshot_date) from dates)
          and previous.snapshot_date = (select min(snapshot_date) from dates)
          and latest.snapshot_date > previous.snapshot_date
        """
    ).df()
    if pairs.empty:
        return {}
    from sklearn.metrics import adjusted_rand_score

    previous = pairs["previous_date"].iloc[0]
    return {
        "run_to_run_previous_date": str(getattr(previous, "date", lambda: previous)()),
        "run_to_run_customers": len(pairs),
        "run_to_run_ari": round(float(adjusted_rand_score(pairs["before"], pairs["after"])), 4),
        "run_to_run_same_id": round(float((pairs["before"] == pairs["after"]).mean()), 4),
    }


def high_value_metrics(settings: Settings, customers, snapshot: date, horizon: int) -> dict:
    """AUC and lift at 10 % of the published high-value probability against the truth.

    The label: a person's true spend (EUR) in (snapshot, snapshot + H] is positive and among
    the top 10 % of the judged people (one customer per person, as for churn).
    """
    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.metrics import average_precision_score, roc_auc_score

    scored = customers.dropna(subset=["high_value_probability"]).drop_duplicates("person_id")
    if scored.empty:
        return {}
    buys = pq.read_table(
        settings.truth / "purchases.parquet", columns=["person_id", "purchase_date", "amount_eur"]
    ).to_pandas()
    end = pd.Timestamp(snapshot) + pd.Timedelta(days=horizon)
    day = pd.to_datetime(buys["purchase_date"])
    window = buys[(day > pd.Timestamp(snapshot)) & (day <= end)]
    spend = window.groupby("person_id")["amount_eur"].sum().astype("float64")
    judged = scored.assign(spend=scored["person_id"].map(spend).fillna(0.0))
    threshold = judged["spend"].quantile(0.9)
    label = (judged["spend"] > 0) & (judged["spend"] >= threshold)
    if label.nunique() < 2:
        return {}
    p = judged["high_value_probability"]
    top = p.rank(ascending=False, method="first") <= max(1, round(0.1 * len(p)))
    return {
        "customers": len(judged),
        "positive_rate": round(float(label.mean()), 4),
        "auc": round(float(roc_auc_score(label, p)), 4),
        "pr_auc": round(float(average_precision_score(label, p)), 4),
        "lift_at_10": round(float(label[top].mean() / label.mean()), 4),
    }
