"""Identity resolution: every source record to one stable customer, without over-merging.

Runs between dbt's staging and intermediate layers, on the warehouse (DuckDB, set-based SQL):

1. CRM records get canonical identifiers (e-mail key, E.164 phone, loyalty card).
2. Deterministic links: records sharing a personal identifier, unless the identifier rules
   (`journeys.identity.rules`) refuse the merge; refusals are kept with their reason.
3. Probabilistic links: Splink (Fellegi-Sunter on DuckDB, parameters estimated without labels,
   blocking rules so cost grows with the blocks, not the square of the records) between CRM
   records sharing no key: typos, nicknames, swapped names, moves, a new e-mail, a surname
   change. The model is saved per version (`identity.match_models`) and reused for a week.
4. Connected components of the links are people. Orders, receipts, cards, cookies and guest
   e-mails are attached to them by the attribution rules (never merging people).
5. Stable ids: a cluster keeps the id its records had; a merge keeps the oldest id, a split
   leaves the id with the larger part; every change goes to `identity.customer_id_history`.

Outputs (schema `identity`): record_links, match_evidence, refused_merges, customer_id_map,
customer_id_history, match_models. dbt reads record_links as a source.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from datetime import UTC, date, datetime

import duckdb
import numpy as np
import pandas as pd

from journeys.identity.rules import (
    IdentityRules,
    email_key_sql,
    is_role_mailbox_sql,
    nicknames,
)
from journeys.settings import Settings
from journeys.warehouse import connect

STATE_DDL = """
create schema if not exists identity;
create table if not exists identity.customer_id_map (
    node_key varchar primary key,
    customer_id varchar not null,
    assigned_on date not null
);
create table if not exists identity.customer_id_history (
    run_date date not null,
    event varchar not null,           -- new | merge | split
    customer_id varchar not null,     -- the id that survives or is created
    other_customer_id varchar,        -- merged: the absorbed id; split: the id split from
    records bigint
);
create table if not exists identity.match_models (
    model_version varchar primary key,
    trained_on date not null,
    records bigint,
    settings_json varchar not null
);
"""


def _norm(column: str) -> str:
    return f"nullif(lower(strip_accents(trim({column}))), '')"


def prepare_records(con: duckdb.DuckDBPyConnection) -> None:
    """CRM records with canonical identifiers and comparison-ready attributes."""
    con.execute("create or replace temp table nickname_map as select * from nickname_rows")
    con.execute(
        f"""
        create or replace temp table id_crm as
        with base as (
            select
                crm_id,
                {_norm("first_name")} as first_name,
                {_norm("last_name")} as last_name,
                birth_date,
                email,
                {email_key_sql("email")} as email_key,
                {is_role_mailbox_sql("email")} as is_role_email,
                phone,
                loyalty_card_id,
                {_norm("street")} as street,
                {_norm("postcode")} as postcode,
                {_norm("city")} as city,
                coalesce(created_at, updated_at) as first_seen_at,
                is_test_account
            from staging.stg_crm__customers
        )
        select
            base.*,
            'crm:' || crm_id as node_key,
            -- a nickname compares as its full name (Bill ~ William)
            coalesce(nick.name, base.first_name) as first_name_root
        from base
        left join (select nickname, min(name) as name from nickname_map group by nickname) nick
            on base.first_name = nick.nickname
        """
    )


def deterministic_links(con: duckdb.DuckDBPyConnection, rules: IdentityRules) -> None:
    """Pairs sharing a personal identifier: linked, or refused by the identifier rules."""
    con.execute(
        """
        create or replace temp table id_keys as
        select crm_id, 'email' as key_type, email_key as key_value from id_crm
            where email_key is not null and not is_role_email
        union all
        select crm_id, 'phone', phone from id_crm where phone is not null
        union all
        select crm_id, 'loyalty_card', loyalty_card_id from id_crm where loyalty_card_id is not null
        """
    )
    con.execute(
        f"""
        create or replace temp table id_key_pairs as
        with groups as (
            select key_type, key_value, count(distinct crm_id) as holders
            from id_keys group by key_type, key_value having count(distinct crm_id) > 1
        ),
        pairs as (
            select l.crm_id as left_id, r.crm_id as right_id, l.key_type, groups.holders
            from id_keys l
            join groups using (key_type, key_value)
            join id_keys r
                on r.key_type = l.key_type and r.key_value = l.key_value and l.crm_id < r.crm_id
        )
        select
            pairs.*,
            case
                when holders > {rules.max_records_per_identifier}
                    then 'identifier shared by ' || holders || ' records'
                when a.birth_date <> b.birth_date then 'different birth dates'
                when {_first_names_conflict("a", "b", rules)} then 'clearly different first names'
            end as refusal
        from pairs
        join id_crm a on a.crm_id = pairs.left_id
        join id_crm b on b.crm_id = pairs.right_id
        """
    )


def _first_names_conflict(a: str, b: str, rules: IdentityRules) -> str:
    """SQL: both first names known, and neither equal, alike, nor a swap with the last name."""
    t = rules.first_name_similarity
    return (
        f"({a}.first_name_root is not null and {b}.first_name_root is not null "
        f"and {a}.first_name_root <> {b}.first_name_root "
        f"and jaro_winkler_similarity({a}.first_name_root, {b}.first_name_root) < {t} "
        f"and coalesce(jaro_winkler_similarity({a}.first_name_root, {b}.last_name), 0) < {t} "
        f"and coalesce(jaro_winkler_similarity({a}.last_name, {b}.first_name_root), 0) < {t})"
    )


# --------------------------------------------------------------------------- probabilistic


def _splink_settings(available: set[str]):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    comparisons = [cl.ForenameSurnameComparison("first_name", "last_name")]
    if "birth_date" in available:
        comparisons.append(
            cl.DateOfBirthComparison("birth_date", input_is_string=True, datetime_format="%Y-%m-%d")
        )
    if "email_key" in available:
        comparisons.append(cl.ExactMatch("email_key"))
    if "phone" in available:
        comparisons.append(cl.ExactMatch("phone"))
    if "postcode" in available:
        comparisons.append(cl.ExactMatch("postcode"))
    if "street" in available:
        comparisons.append(cl.JaroWinklerAtThresholds("street", [0.9]))
    if "city" in available:
        comparisons.append(cl.ExactMatch("city"))

    blocking = [
        block_on("first_name", "last_name"),
        "l.first_name = r.last_name and l.last_name = r.first_name",  # swapped names
    ]
    if "birth_date" in available:
        blocking += [
            block_on("birth_date", "substr(first_name, 1, 1)"),
            block_on("birth_date", "substr(last_name, 1, 2)"),
        ]
    if "phone" in available:
        blocking.append(block_on("phone"))
    if "email_key" in available:
        blocking.append(block_on("email_key"))
    if "postcode" in available:
        blocking.append(block_on("postcode", "first_name"))
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="crm_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=True,  # gamma_*: the fields that agreed
        retain_matching_columns=True,
    )


def probabilistic_links(
    con: duckdb.DuckDBPyConnection, settings: Settings, rules: IdentityRules, run_date: date
) -> dict:
    """Splink over CRM records; pairs at or above the threshold become `id_match_pairs`."""
    from splink import DuckDBAPI, Linker

    columns = [
        "first_name",
        "last_name",
        "birth_date",
        "email_key",
        "phone",
        "postcode",
        "street",
        "city",
    ]
    # An identifier shared beyond the limit (an office line) is no evidence of one person.
    con.execute(
        "create or replace temp table shared_keys as select key_type, key_value from id_keys "
        f"group by all having count(distinct crm_id) > {rules.max_records_per_identifier}"
    )
    frame = con.execute(
        "select crm_id, first_name_root as first_name, last_name, "
        "strftime(birth_date, '%Y-%m-%d') as birth_date, "
        "case when is_role_email or email_key in (select key_value from shared_keys "
        "where key_type = 'email') then null else email_key end as email_key, "
        "case when phone in (select key_value from shared_keys where key_type = 'phone') "
        "then null else phone end as phone, postcode, street, city "
        "from id_crm where not is_test_account"
    ).df()
    empty = {"pairs": 0, "model_version": None, "trained": False}
    con.execute(
        "create or replace temp table id_match_pairs (left_id varchar, right_id varchar, "
        "match_weight double, match_probability double, agreed varchar[])"
    )
    if len(frame) < 2:
        return empty
    # A company file without e-mails or phones: those comparisons are left out, not zeroed.
    available = {c for c in columns[2:] if frame[c].notna().mean() > 0.01}
    splink_settings = _splink_settings(available)
    db_api = DuckDBAPI()
    latest = con.execute(
        "select model_version, trained_on, settings_json from identity.match_models "
        "order by trained_on desc, model_version desc limit 1"
    ).fetchall()
    latest = latest[0] if latest else None
    trained = False
    if (
        latest
        and (run_date - latest[1]).days < rules.retrain_days
        and _same_columns(latest[2], splink_settings)
    ):
        linker = Linker(db_api.register(frame), json.loads(latest[2]), log_level="WARNING")
        model_version = latest[0]
    else:
        splink_settings.probability_two_random_records_match = _match_prior(con, len(frame))
        linker = Linker(db_api.register(frame), splink_settings, log_level="WARNING")
        sample = min(1.0, 300_000 / len(frame))
        linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
        for rule in _training_blocks(available):
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, record_sample_proportion=sample
                )
            except ValueError as e:
                # A level never seen among this pass's matches drives its m to 0, which
                # Splink refuses; the comparison keeps its default m and the run goes on.
                warnings.warn(f"Splink EM pass {rule} skipped: {e}", stacklevel=1)
        model_json = json.dumps(linker.misc.save_model_to_json(), sort_keys=True, default=str)
        model_version = (
            f"{run_date.isoformat()}-{hashlib.sha256(model_json.encode()).hexdigest()[:8]}"
        )
        con.execute(
            "insert or replace into identity.match_models values (?, ?, ?, ?)",
            [model_version, run_date, len(frame), model_json],
        )
        model_dir = settings.home / "identity" / "models"
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / f"{model_version}.json").write_text(model_json)
        trained = True
    predictions = linker.inference.predict(
        threshold_match_probability=rules.match_probability
    ).as_pandas_dataframe()
    if predictions.empty:
        return {"pairs": 0, "model_version": model_version, "trained": trained}
    # gamma_<field> > 0: the field agreed at some level (0: disagreed, -1: missing).
    gammas = [c for c in predictions.columns if c.startswith("gamma_")]
    fields = np.array([c.removeprefix("gamma_") for c in gammas], dtype=object)
    agreed_mask = predictions[gammas].to_numpy() > 0 if gammas else np.zeros((len(predictions), 0))
    agreed = [list(fields[row]) for row in agreed_mask.astype(bool)]
    pairs = pd.DataFrame(
        {
            "left_id": predictions[["crm_id_l", "crm_id_r"]].min(axis=1),
            "right_id": predictions[["crm_id_l", "crm_id_r"]].max(axis=1),
            "match_weight": predictions["match_weight"].astype(float),
            "match_probability": predictions["match_probability"].astype(float),
            "agreed": list(agreed),
        }
    )
    con.register("new_pairs", pairs)
    con.execute("insert into id_match_pairs select * from new_pairs")
    con.unregister("new_pairs")
    return {"pairs": len(pairs), "model_version": model_version, "trained": trained}


def _match_prior(con: duckdb.DuckDBPyConnection, records: int) -> float:
    """Share of record pairs that are matches, from pairs that agree on name and birth date.

    Counted in SQL instead of Splink's estimate, which is 0 (and breaks the model) on a file
    without such duplicates; floored at one match among all pairs.
    """
    pairs = max(records * (records - 1) / 2, 1.0)
    agreeing = con.execute(
        "select coalesce(sum(n * (n - 1) / 2), 0) from (select count(*) as n from id_crm "
        "where not is_test_account group by first_name_root, last_name, birth_date)"
    ).fetchall()[0][0]
    return min(max(float(agreeing) / 0.7, 1.0) / pairs, 0.5)


def _training_blocks(available: set[str]) -> list:
    from splink import block_on

    blocks = [block_on("first_name", "last_name")]
    if "birth_date" in available:
        blocks.append(block_on("birth_date"))
    if "postcode" in available:
        blocks.append(block_on("postcode"))
    return blocks


def _same_columns(saved_json: str, splink_settings) -> bool:
    """A saved model is reusable only for the same comparisons (the file may have changed)."""
    saved = json.loads(saved_json)
    wanted = splink_settings.get_settings("duckdb").as_dict()
    names = lambda s: sorted(c.get("output_column_name", "") for c in s["comparisons"])  # noqa: E731
    return names(saved) == names(wanted)


# --------------------------------------------------------------------------- clusters and ids


def cluster_people(con: duckdb.DuckDBPyConnection, rules: IdentityRules) -> int:
    """Cluster CRM records into people: `id_people(crm_id, node_key, cluster)`.

    Union-find over the accepted links, strongest first (shared identifiers, then matches by
    weight), refusing any union that would put records with conflicting strong attributes
    into one person. Pairwise checks alone are not enough: a record without a birth date can
    match two people who differ, and plain connected components would chain them together.
    Refused unions are recorded in `id_cluster_refusals`.
    """
    records = con.execute(
        "select crm_id, birth_date, first_name_root, last_name from id_crm order by crm_id"
    ).df()
    edges = con.execute(
        """
        select left_id, right_id, 1e9 as strength, key_type as via from id_key_pairs
        where refusal is null
        union all
        select left_id, right_id, match_weight, 'probabilistic match' from id_match_pairs
        order by strength desc, left_id, right_id
        """
    ).df()
    position = {key: i for i, key in enumerate(records["crm_id"])}
    parent = list(range(len(records)))
    birth_dates = [
        {d} if d is not None and d == d else set() for d in records["birth_date"].tolist()
    ]
    names = [
        {(f, last)} if f else set()
        for f, last in zip(
            records["first_name_root"].tolist(), records["last_name"].tolist(), strict=True
        )
    ]

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    refusals: list[tuple[str, str, str, str]] = []
    for left, right, _, via in edges.itertuples(index=False):
        a, b = find(position[left]), find(position[right])
        if a == b:
            continue
        reason = _cluster_conflict(birth_dates[a], birth_dates[b], names[a], names[b], rules)
        if reason:
            refusals.append((left, right, via, reason))
            continue
        parent[b] = a
        birth_dates[a] |= birth_dates[b]
        names[a] |= names[b]
    roots = [find(i) for i in range(len(records))]
    con.register("people_frame", pd.DataFrame({"crm_id": records["crm_id"], "root": roots}))
    con.execute(
        "create or replace temp table id_people as select crm_id, 'crm:' || crm_id as node_key, "
        "'p' || root as cluster from people_frame"
    )
    con.unregister("people_frame")
    con.register(
        "refusal_frame",
        pd.DataFrame(refusals, columns=["left_id", "right_id", "via", "reason"]).astype("object"),
    )
    con.execute(
        "create or replace temp table id_cluster_refusals as "
        "select left_id::varchar as left_id, right_id::varchar as right_id, via::varchar as via, "
        "reason::varchar as reason from refusal_frame"
    )
    con.unregister("refusal_frame")
    return len(set(roots))


def _cluster_conflict(
    dates_a: set, dates_b: set, names_a: set, names_b: set, rules: IdentityRules
) -> str | None:
    """Why two would-be-merged groups of records cannot be one person (None if they can)."""
    from rapidfuzz.distance import JaroWinkler

    if dates_a and dates_b and not dates_a & dates_b:
        return "different birth dates within the merged person"
    if names_a and names_b:
        t = rules.first_name_similarity

        def alike(x: tuple[str, str | None], y: tuple[str, str | None]) -> bool:
            (first_x, last_x), (first_y, last_y) = x, y
            return (
                first_x == first_y
                or JaroWinkler.similarity(first_x, first_y) >= t
                or JaroWinkler.similarity(first_x, last_y or "") >= t  # first/last swapped
                or JaroWinkler.similarity(last_x or "", first_y) >= t
            )

        if not any(alike(x, y) for x in names_a for y in names_b):
            return "clearly different first names within the merged person"
    return None


def attach_activity(con: duckdb.DuckDBPyConnection) -> None:
    """Guest, role-mailbox and card-only nodes; orders, receipts and cookies by attribution rule."""
    email = email_key_sql("customer_email")
    con.execute(
        f"""
        create or replace temp table id_email_holders as
        select c.email_key, p.cluster, min(c.first_seen_at) as first_seen_at
        from id_crm c join id_people p using (crm_id)
        where c.email_key is not null
        group by c.email_key, p.cluster;

        create or replace temp table id_email_owner as
        select email_key,
               arg_min(cluster, first_seen_at) as cluster,
               count(*) as holders
        from id_email_holders group by email_key;

        create or replace temp table id_orders as
        select order_id, crm_id, customer_email, ordered_at,
               {email} as email_key,
               {is_role_mailbox_sql("customer_email")} as is_role_email
        from staging.stg_shop__orders;

        create or replace temp table id_order_links as
        select
            o.order_id,
            case
                when p.cluster is not null then p.cluster
                when o.is_role_email then 'role_email:' || o.email_key
                when owner.cluster is not null then owner.cluster
                when o.email_key is not null then 'email:' || o.email_key
            end as cluster,
            case
                when p.cluster is not null then 'crm_id'
                when o.is_role_email then 'role_mailbox'
                when owner.holders > 1 then 'shared_email_first_holder'
                when owner.cluster is not null then 'email'
                when o.email_key is not null then 'guest_email'
            end as linked_by,
            o.ordered_at as first_seen_at
        from id_orders o
        left join id_people p on p.crm_id = o.crm_id
        left join id_email_owner owner on owner.email_key = o.email_key and not o.is_role_email;

        create or replace temp table id_card_owner as
        select c.loyalty_card_id, arg_min(p.cluster, c.first_seen_at) as cluster
        from id_crm c join id_people p using (crm_id)
        where c.loyalty_card_id is not null group by c.loyalty_card_id;

        create or replace temp table id_receipt_links as
        select
            r.receipt_id,
            coalesce(owner.cluster, 'card:' || r.loyalty_card_id) as cluster,
            case when owner.cluster is not null then 'loyalty_card' else 'guest_card' end
                as linked_by,
            r.purchased_at as first_seen_at,
            r.loyalty_card_id
        from staging.stg_pos__receipts r
        left join id_card_owner owner using (loyalty_card_id)
        where r.loyalty_card_id is not null;

        create or replace temp table id_logins as
        select
            e.anonymous_id,
            e.event_at,
            coalesce(
                p.cluster,
                case when {is_role_mailbox_sql("e.user_email")} then null
                     else coalesce(owner.cluster, 'email:' || {email_key_sql("e.user_email")}) end
            ) as cluster
        from staging.stg_web__events e
        left join id_people p on p.crm_id = e.crm_id
        left join id_email_owner owner on owner.email_key = {email_key_sql("e.user_email")}
        where e.crm_id is not null or e.user_email is not null;

        create or replace temp table id_cookie_links as
        with counts as (
            select anonymous_id, cluster, count(*) as logins, min(event_at) as first_login
            from id_logins where cluster is not null group by all
        )
        select
            anonymous_id,
            arg_max(cluster, logins * 1e12 - epoch(first_login)) as cluster,
            case when count(*) > 1 then 'shared_cookie_majority' else 'login' end as linked_by,
            min(first_login) as first_seen_at
        from counts group by anonymous_id;
        """
    )


def _new_id(node_key: str) -> str:
    return "cj_" + hashlib.md5(node_key.encode()).hexdigest()[:16]


def assign_customer_ids(con: duckdb.DuckDBPyConnection, run_date: date) -> dict:
    """Give every cluster a stable id and record merges and splits."""
    nodes = con.execute(
        """
        select node_key, cluster from id_people
        union
        select cluster, cluster from id_order_links where cluster not like 'p%'
        union
        select cluster, cluster from id_receipt_links where cluster not like 'p%'
        union
        select cluster, cluster from id_cookie_links where cluster not like 'p%'
        """
    ).df()
    previous = con.execute(
        "select node_key, customer_id, assigned_on from identity.customer_id_map"
    ).df()
    if nodes.empty:  # no customer records at all (yet): nothing to assign
        con.execute("delete from identity.customer_id_map")
        con.execute(
            "create or replace temp table id_cluster_ids (cluster varchar, customer_id varchar)"
        )
        return {"customers": 0}
    joined = nodes.merge(previous, on="node_key", how="left")

    # Each previous id goes to the cluster holding most of its records (ties: smallest cluster).
    held = (
        joined.dropna(subset=["customer_id"])
        .groupby(["customer_id", "cluster"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["customer_id", "n", "cluster"], ascending=[True, False, True])
    )
    owner = held.drop_duplicates("customer_id")
    since = previous.groupby("customer_id", as_index=False)["assigned_on"].min()
    owner = owner.merge(since, on="customer_id", how="left")
    chosen = (
        owner.sort_values(["cluster", "assigned_on", "customer_id"])
        .drop_duplicates("cluster")
        .set_index("cluster")["customer_id"]
    )

    taken = set(previous["customer_id"])
    ids: dict[str, str] = {}
    events: list[tuple] = []
    sizes = nodes.groupby("cluster").size()
    for cluster, first_node in nodes.groupby("cluster")["node_key"].min().items():
        if cluster in chosen.index:
            ids[cluster] = chosen[cluster]
            continue
        new = _new_id(first_node)
        if new in taken:  # the id of a cluster that split: derive a fresh one
            new = _new_id(f"{first_node}@{run_date}")
        ids[cluster] = new
        taken.add(new)
        split_from = held[held["cluster"] == cluster]["customer_id"]
        if len(split_from):
            events.append((run_date, "split", new, split_from.iloc[0], int(sizes[cluster])))
        else:
            events.append((run_date, "new", new, None, int(sizes[cluster])))
    for _, row in owner.iterrows():
        survivor = ids[row["cluster"]]
        if survivor != row["customer_id"]:
            events.append((run_date, "merge", survivor, row["customer_id"], int(row["n"])))

    nodes["customer_id"] = nodes["cluster"].map(ids).astype("object")
    kept = nodes.merge(previous, on=["node_key", "customer_id"], how="left")
    kept["assigned_on"] = kept["assigned_on"].fillna(pd.Timestamp(run_date)).dt.date
    con.register("new_map", kept[["node_key", "customer_id", "assigned_on"]])
    con.execute("delete from identity.customer_id_map")
    con.execute("insert into identity.customer_id_map select * from new_map")
    con.unregister("new_map")
    con.register(
        "cluster_ids", pd.DataFrame({"cluster": list(ids), "customer_id": list(ids.values())})
    )
    con.execute("create or replace temp table id_cluster_ids as select * from cluster_ids")
    con.unregister("cluster_ids")
    if events:
        con.executemany("insert into identity.customer_id_history values (?, ?, ?, ?, ?)", events)
    counts = pd.Series([e[1] for e in events]).value_counts().to_dict() if events else {}
    return {"customers": len(ids), **{f"{k}_ids": int(v) for k, v in counts.items()}}


def publish_links(con: duckdb.DuckDBPyConnection) -> None:
    """Write identity.record_links, match_evidence and refused_merges for dbt to read."""
    con.execute(
        """
        create or replace table identity.record_links as
        with links as (
            select 'crm' as source, p.crm_id as source_key, p.cluster,
                   case when exists (select 1 from id_key_pairs k
                                     where k.refusal is null
                                       and p.crm_id in (k.left_id, k.right_id))
                             or exists (select 1 from id_match_pairs m
                                        where p.crm_id in (m.left_id, m.right_id))
                        then 'linked' else 'single_record' end as linked_by,
                   c.first_seen_at
            from id_people p join id_crm c using (crm_id)
            union all
            select 'shop_order', order_id, cluster, linked_by, first_seen_at
            from id_order_links where cluster is not null
            union all
            select distinct on (o.email_key) 'shop_email', o.email_key, l.cluster, l.linked_by,
                   min(l.first_seen_at) over (partition by o.email_key)
            from id_orders o join id_order_links l using (order_id)
            where o.email_key is not null and l.linked_by <> 'crm_id'
            union all
            select 'pos_receipt', receipt_id, cluster, linked_by, first_seen_at
            from id_receipt_links
            union all
            select distinct on (loyalty_card_id) 'pos_card', loyalty_card_id, cluster, linked_by,
                   min(first_seen_at) over (partition by loyalty_card_id)
            from id_receipt_links
            union all
            select 'web_cookie', anonymous_id, cluster, linked_by, first_seen_at
            from id_cookie_links
        )
        select ids.customer_id, links.source, links.source_key, links.linked_by,
               links.first_seen_at
        from links join id_cluster_ids ids using (cluster)
        """
    )
    con.execute(
        """
        create or replace table identity.match_evidence as
        select left_id as left_crm_id, right_id as right_crm_id, 'same ' || key_type as rule,
               null::double as match_weight, null::double as match_probability,
               [key_type] as agreed_fields
        from id_key_pairs where refusal is null
        union all
        select left_id, right_id, 'probabilistic match', match_weight, match_probability, agreed
        from id_match_pairs
        """
    )
    con.execute(
        """
        create or replace table identity.refused_merges as
        select left_id as left_crm_id, right_id as right_crm_id, key_type as shared_identifier,
               refusal as reason
        from id_key_pairs where refusal is not null
        union all
        select left_id, right_id, via, reason from id_cluster_refusals
        """
    )


def resolve_identities(
    settings: Settings, run_date: date, rules: IdentityRules | None = None
) -> dict:
    """The identity step of the nightly run; see the module docstring."""
    rules = rules or IdentityRules()
    started = time.perf_counter()
    with connect(settings) as con:
        con.execute(STATE_DDL)
        con.register("nickname_rows", pd.DataFrame(nicknames(), columns=["nickname", "name"]))
        prepare_records(con)
        deterministic_links(con, rules)
        matching = probabilistic_links(con, settings, rules, run_date)
        people = cluster_people(con, rules)
        attach_activity(con)
        con.execute("begin transaction")
        try:
            ids = assign_customer_ids(con, run_date)
            publish_links(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        refused = con.execute("select count(*) from identity.refused_merges").fetchall()[0][0]
        records = con.execute("select count(*) from id_crm").fetchall()[0][0]
    return {
        "crm_records": int(records),
        "people_from_crm": people,
        "probabilistic_pairs": matching["pairs"],
        "match_model_version": matching["model_version"],
        "match_model_trained": matching["trained"],
        "refused_merges": int(refused),
        **ids,
        "seconds": round(time.perf_counter() - started, 1),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
