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
    from splink import SettingsCreator

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
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="crm_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=_prediction_blocks(available),
        retain_intermediate_calculation_columns=True,  # gamma_*: the fields that agreed
        retain_matching_columns=True,
    )


def _prediction_blocks(available: set[str]) -> list:
    """Candidate pairs: each rule adds a name, date or address condition to the other keys.

    A plain first+last name block grows with the square of the file (a few hundred names
    cover most people), so a name block also needs the city or the birth date. Each
    duplicate kind the generator plants (typo, nickname, swap, move, second e-mail, missing
    birth date) still shares at least one of these blocks with its other record; blocks on
    e-mail and phone are left out because those pairs are already deterministic links.
    """
    from splink import block_on

    birth = "birth_date" in available
    blocks = []
    if birth:
        blocks += [
            block_on("birth_date", "substr(first_name, 1, 1)"),
            block_on("birth_date", "substr(last_name, 1, 2)"),
            # swapped names with a typo: the initials cross over
            "l.birth_date = r.birth_date "
            "and substr(l.first_name, 1, 1) = substr(r.last_name, 1, 1)",
        ]
    if "city" in available:
        blocks += [
            block_on("first_name", "last_name", "city"),
            "l.first_name = r.last_name and l.last_name = r.first_name and l.city = r.city",
        ]
    if {"postcode", "street"} <= available:
        blocks.append(block_on("postcode", "street"))
    if "postcode" in available and not birth:  # no birth dates: names at the same postcode
        blocks.append(block_on("postcode", "first_name"))
    if not blocks:  # a file with names only: all that is left
        blocks = [
            block_on("first_name", "last_name"),
            "l.first_name = r.last_name and l.last_name = r.first_name",
        ]
    return blocks


def _splink_connection(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB for Splink that spills to disk instead of growing.

    DuckDB's default memory limit is 80 % of the machine; Splink's blocked pairs and EM
    tables would take it all on a large file.
    """
    spill = settings.home / "tmp" / "identity"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{settings.identity_memory_limit}'")
    con.execute(f"set temp_directory = '{spill}'")
    con.execute("set preserve_insertion_order = false")
    return con


def probabilistic_links(
    con: duckdb.DuckDBPyConnection, settings: Settings, rules: IdentityRules, run_date: date
) -> dict:
    """Splink over CRM records; pairs at or above the threshold become `id_match_pairs`."""
    from splink import DuckDBAPI

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
    empty = {"pairs": 0, "model_version": None, "trained": False, "seconds": {}}
    con.execute(
        "create or replace temp table id_match_pairs (left_id varchar, right_id varchar, "
        "match_weight double, match_probability double, agreed varchar[])"
    )
    if len(frame) < 2:
        return empty
    # A company file without e-mails or phones: those comparisons are left out, not zeroed.
    available = {c for c in columns[2:] if frame[c].notna().mean() > 0.01}
    db_api = DuckDBAPI(connection=_splink_connection(settings))
    try:
        return _train_and_predict(con, db_api, frame, available, settings, rules, run_date)
    finally:
        db_api.duckdb_con.close()


def _train_and_predict(
    con: duckdb.DuckDBPyConnection,
    db_api,
    frame: pd.DataFrame,
    available: set[str],
    settings: Settings,
    rules: IdentityRules,
    run_date: date,
) -> dict:
    from splink import Linker
    from splink.internals.exceptions import EMTrainingException  # not re-exported publicly

    splink_settings = _splink_settings(available)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    latest = con.execute(
        "select model_version, trained_on, settings_json from identity.match_models "
        "order by trained_on desc, model_version desc limit 1"
    ).fetchall()
    latest = latest[0] if latest else None
    trained = False
    if (
        latest
        and (run_date - latest[1]).days < rules.retrain_days
        and _same_model_shape(latest[2], splink_settings)
    ):
        linker = Linker(db_api.register(frame), json.loads(latest[2]), log_level="WARNING")
        model_version = latest[0]
    else:
        splink_settings.probability_two_random_records_match = _match_prior(con, len(frame))
        linker = Linker(db_api.register(frame), splink_settings, log_level="WARNING")
        linker.training.estimate_u_using_random_sampling(max_pairs=rules.u_max_pairs, seed=7)
        timings["estimate_u"] = time.perf_counter() - started
        for rule in _training_blocks(available):
            # Splink drops the blocked comparisons from the linker's own settings before a
            # pass and restores them only on success: keep a copy to undo a failed pass.
            before = linker._settings_obj.core_model_settings.copy()
            try:
                # max_pairs: Splink samples records by hash so a pass never exceeds it
                linker.training.estimate_parameters_using_expectation_maximisation(
                    rule, max_pairs=rules.em_max_pairs
                )
            except (ValueError, EMTrainingException) as e:
                # A level never seen among this pass's matches drives its m to 0, which
                # Splink refuses, and a small file may have no pairs in a strict block: the
                # comparisons keep their other passes' (or default) m and the run goes on.
                linker._settings_obj.core_model_settings = before
                warnings.warn(f"Splink EM pass {rule} skipped: {e}", stacklevel=1)
        timings["estimate_m"] = time.perf_counter() - started - timings["estimate_u"]
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
    predict_started = time.perf_counter()
    predictions = linker.inference.predict(
        threshold_match_probability=rules.match_probability
    ).as_pandas_dataframe()
    timings["predict"] = time.perf_counter() - predict_started
    result = {
        "model_version": model_version,
        "trained": trained,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    if predictions.empty:
        return {"pairs": 0, **result}
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
    return {"pairs": len(pairs), **result}


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
    """EM passes on strict blocks, where true matches are a good share of the pairs.

    Each pass estimates the m-probabilities of the fields it does not block on: names and
    birth date from people at one address, contacts and addresses from equal name and birth
    date. Without birth dates, name and postcode blocks (capped by `em_max_pairs`).
    """
    from splink import block_on

    blocks = []
    if "birth_date" in available:
        blocks.append(block_on("first_name", "last_name", "birth_date"))
        if "postcode" in available:
            blocks.append(block_on("birth_date", "postcode"))
    else:
        blocks.append(block_on("first_name", "last_name"))
    if {"postcode", "street"} <= available:
        blocks.append(block_on("postcode", "street"))
    elif "postcode" in available:
        blocks.append(block_on("postcode"))
    return blocks


def _same_model_shape(saved_json: str, splink_settings) -> bool:
    """A saved model is reusable only for the same comparisons and blocking rules."""
    saved = json.loads(saved_json)
    wanted = splink_settings.get_settings("duckdb").as_dict()

    def shape(s: dict) -> tuple:
        names = sorted(c.get("output_column_name", "") for c in s["comparisons"])
        blocks = [b["blocking_rule"] for b in s["blocking_rules_to_generate_predictions"]]
        return names, blocks

    return shape(saved) == shape(wanted)


# --------------------------------------------------------------------------- clusters and ids


def cluster_people(con: duckdb.DuckDBPyConnection, rules: IdentityRules) -> int:
    """Cluster CRM records into people: `id_people(crm_id, node_key, cluster)`.

    Union-find over the accepted links, strongest first (shared identifiers, then matches by
    weight), refusing any union that would put records with conflicting strong attributes
    into one person. Pairwise checks alone are not enough: a record without a birth date can
    match two people who differ, and plain connected components would chain them together.
    Refused unions are recorded in `id_cluster_refusals`.
    """
    con.execute(
        """
        create or replace temp table id_edges as
        select left_id, right_id, 1e9 as strength, key_type as via from id_key_pairs
        where refusal is null
        union all
        select left_id, right_id, match_weight, 'probabilistic match' from id_match_pairs
        """
    )
    edges = con.execute("select * from id_edges order by strength desc, left_id, right_id").df()
    # Only linked records need the union-find; every other record is a person of its own.
    records = con.execute(
        """
        select crm_id, birth_date, first_name_root, last_name from id_crm
        semi join (select left_id as crm_id from id_edges
                   union select right_id from id_edges) linked using (crm_id)
        order by crm_id
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
        """
        create or replace temp table id_people as
        select c.crm_id, 'crm:' || c.crm_id as node_key,
               coalesce('p' || f.root, 'p:' || c.crm_id) as cluster
        from id_crm c left join people_frame f using (crm_id)
        """
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
    return con.execute("select count(distinct cluster) from id_people").fetchall()[0][0]


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
        with logins as (
            select anonymous_id, event_at, crm_id, user_email
            from staging.stg_web__events
            where crm_id is not null or user_email is not null
        ),
        -- canonical keys once per distinct address, not once per event
        emails as (
            select user_email,
                   {email_key_sql("user_email")} as email_key,
                   {is_role_mailbox_sql("user_email")} as is_role_email
            from (select distinct user_email from logins where user_email is not null)
        )
        select
            l.anonymous_id,
            l.event_at,
            coalesce(
                p.cluster,
                case when e.is_role_email then null
                     else coalesce(owner.cluster, 'email:' || e.email_key) end
            ) as cluster
        from logins l
        left join emails e using (user_email)
        left join id_people p on p.crm_id = l.crm_id
        left join id_email_owner owner on owner.email_key = e.email_key;

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


def assign_customer_ids(con: duckdb.DuckDBPyConnection, run_date: date) -> dict:
    """Give every cluster a stable id and record merges and splits (set-based SQL).

    Each previous id goes to the cluster holding most of its records (ties: smallest
    cluster); a cluster offered several previous ids keeps the oldest (ties: smallest id).
    Any other cluster gets a new id derived from its smallest node key: a `split` when it
    holds records of a previous id, else `new`. An id that lost its cluster to an older id
    is recorded as a `merge` into the survivor.
    """
    con.execute(
        """
        create or replace temp table id_nodes as
        select node_key, cluster from id_people
        union
        select cluster, cluster from id_order_links where cluster not like 'p%'
        union
        select cluster, cluster from id_receipt_links where cluster not like 'p%'
        union
        select cluster, cluster from id_cookie_links where cluster not like 'p%';

        create or replace temp table id_held as
        select prev.customer_id, n.cluster, count(*) as n
        from id_nodes n join identity.customer_id_map prev using (node_key)
        group by all;

        create or replace temp table id_owner as
        select held.customer_id, held.cluster, held.n, since.assigned_on
        from id_held held
        join (select customer_id, min(assigned_on) as assigned_on
              from identity.customer_id_map group by customer_id) since using (customer_id)
        qualify row_number() over (
            partition by held.customer_id order by held.n desc, held.cluster
        ) = 1;
        """
    )
    con.execute(
        """
        create or replace temp table id_cluster_ids as
        with clusters as (
            select cluster, min(node_key) as first_node, count(*) as records
            from id_nodes group by cluster
        ),
        kept as (
            select cluster, customer_id from id_owner
            qualify row_number() over (
                partition by cluster order by assigned_on, customer_id
            ) = 1
        ),
        fresh as (
            select cluster, records,
                   'cj_' || substr(md5(first_node), 1, 16) as plain,
                   -- the id of a cluster that split off keeps its old owner's: derive another
                   'cj_' || substr(md5(first_node || '@' || $run_date::varchar), 1, 16) as dated
            from clusters anti join kept using (cluster)
        )
        select c.cluster, c.records, kept.customer_id is null as is_new,
               coalesce(
                   kept.customer_id,
                   case when taken.customer_id is null then fresh.plain else fresh.dated end
               ) as customer_id
        from clusters c
        left join kept using (cluster)
        left join fresh using (cluster)
        left join (select distinct customer_id from identity.customer_id_map) taken
            on taken.customer_id = fresh.plain
        """,
        {"run_date": run_date},
    )
    con.execute(
        """
        create or replace temp table id_events as
        select $run_date::date as run_date,
               case when held.cluster is null then 'new' else 'split' end as event,
               ids.customer_id, held.split_from, ids.records
        from id_cluster_ids ids
        left join (select cluster, min(customer_id) as split_from from id_held group by cluster)
            held using (cluster)
        where ids.is_new
        union all
        select $run_date, 'merge', ids.customer_id, owner.customer_id, owner.n
        from id_owner owner join id_cluster_ids ids using (cluster)
        where ids.customer_id <> owner.customer_id;
        """,
        {"run_date": run_date},
    )
    con.execute(
        """
        create or replace temp table id_new_map as
        select n.node_key, ids.customer_id,
               coalesce(prev.assigned_on, $run_date::date) as assigned_on
        from id_nodes n
        join id_cluster_ids ids using (cluster)
        left join identity.customer_id_map prev
            on prev.node_key = n.node_key and prev.customer_id = ids.customer_id;
        """,
        {"run_date": run_date},
    )
    con.execute(
        """
        insert into identity.customer_id_history select * from id_events;
        delete from identity.customer_id_map;
        insert into identity.customer_id_map select * from id_new_map;
        """
    )
    counts = con.execute("select event, count(*) from id_events group by event").fetchall()
    customers = con.execute("select count(*) from id_cluster_ids").fetchall()[0][0]
    return {"customers": int(customers), **{f"{k}_ids": int(v) for k, v in counts}}


def publish_links(con: duckdb.DuckDBPyConnection) -> None:
    """Write identity.record_links, match_evidence and refused_merges for dbt to read."""
    con.execute(
        """
        create or replace table identity.record_links as
        with linked_crm as (
            select left_id as crm_id from id_key_pairs where refusal is null
            union select right_id from id_key_pairs where refusal is null
            union select left_id from id_match_pairs
            union select right_id from id_match_pairs
        ),
        links as (
            select 'crm' as source, p.crm_id as source_key, p.cluster,
                   case when linked_crm.crm_id is not null then 'linked'
                        else 'single_record' end as linked_by,
                   c.first_seen_at
            from id_people p
            join id_crm c using (crm_id)
            left join linked_crm using (crm_id)
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
    seconds: dict[str, float] = {}

    def phase(name: str) -> None:  # seconds per phase, for the run summary
        seconds[name] = round(time.perf_counter() - started - sum(seconds.values()), 1)

    with connect(settings) as con:
        con.execute(STATE_DDL)
        con.register("nickname_rows", pd.DataFrame(nicknames(), columns=["nickname", "name"]))
        prepare_records(con)
        deterministic_links(con, rules)
        phase("deterministic")
        matching = probabilistic_links(con, settings, rules, run_date)
        phase("probabilistic")
        people = cluster_people(con, rules)
        phase("clustering")
        attach_activity(con)
        con.execute("begin transaction")
        try:
            ids = assign_customer_ids(con, run_date)
            publish_links(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        phase("ids_and_publish")
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
        "seconds_by_phase": {
            **seconds,
            **{f"splink_{k}": v for k, v in matching.get("seconds", {}).items()},
        },
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
