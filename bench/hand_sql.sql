-- Hand-written DuckDB SQL doing the work of the dbt models the bench compares (see
-- journeys/bench.py COMPARED_MODELS): cleaning and dedup of every source, attribution of orders
-- through the identity step's record links, FX conversion, the golden record and RFM/engagement
-- features per snapshot date. One script, no framework: the yardstick for dbt's overhead.
--
-- It reads the same inputs as dbt: the raw.* views over the landed Parquet and
-- identity.record_links (the identity step's output), from the warehouse attached read-only as
-- `wh`. It materialises the same tables dbt does (staging, intermediate and marts), in schemas
-- hand_staging / hand_marts of a scratch database, so the work compared is the same.
-- Placeholders (filled by journeys.bench): {snapshot_dates} (a list of date literals),
-- {reporting_currency}, {phone_country_code}.

set TimeZone = 'UTC';
create schema if not exists hand_staging;
create schema if not exists hand_marts;

create or replace macro norm_phone(p) as case
    when p is null or regexp_replace(p, '[^0-9]', '', 'g') = '' then null
    when trim(p) like '+%' then '+' || regexp_replace(p, '[^0-9]', '', 'g')
    when regexp_replace(p, '[^0-9]', '', 'g') like '00%'
        then '+' || substr(regexp_replace(p, '[^0-9]', '', 'g'), 3)
    when regexp_replace(p, '[^0-9]', '', 'g') like '0%'
        then '+{phone_country_code}' || substr(regexp_replace(p, '[^0-9]', '', 'g'), 2)
    else '+' || regexp_replace(p, '[^0-9]', '', 'g')
end;
create or replace macro txt(v) as nullif(trim(v), '');
create or replace macro ts(v) as cast(cast(nullif(trim(v), '') as timestamptz) as timestamp);

-- ----------------------------------------------------------------------------- cleaning
create or replace table hand_staging.crm_customers as
select
    txt(crm_id) as crm_id, ts(updated_at) as updated_at, txt(first_name) as first_name,
    txt(last_name) as last_name, txt(email) as email_raw, nullif(lower(trim(email)), '') as email,
    norm_phone(txt(phone)) as phone, cast(txt(birth_date) as date) as birth_date,
    lower(txt(gender)) as gender, txt(street) as street, txt(city) as city,
    txt(postcode) as postcode, upper(txt(country)) as country,
    txt(loyalty_card_id) as loyalty_card_id, ts(created_at) as created_at,
    coalesce(cast(txt(is_test_account) as boolean), false) as is_test_account,
    _delivery_date as delivered_on
from wh.raw.crm_customers
qualify row_number() over (
    partition by txt(crm_id)
    order by ts(updated_at) desc nulls last, _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.shop_orders as
select
    txt(order_id) as order_id, ts(ordered_at) as ordered_at, lower(txt(status)) as status,
    upper(txt(currency)) as currency, cast(txt(total_amount) as decimal(28, 6)) as total_amount,
    coalesce(cast(txt(discount_amount) as decimal(28, 6)), 0) as discount_amount,
    txt(customer_email) as customer_email_raw,
    nullif(lower(trim(customer_email)), '') as customer_email, txt(crm_id) as crm_id,
    ts(updated_at) as updated_at, txt(shipping_postcode) as shipping_postcode,
    _delivery_date as delivered_on
from wh.raw.shop_orders
qualify row_number() over (
    partition by txt(order_id)
    order by ts(updated_at) desc nulls last, _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.shop_order_lines as
select
    txt(order_id) || '-' || cast(cast(txt(line_number) as integer) as varchar) as order_line_id,
    txt(order_id) as order_id, cast(txt(line_number) as integer) as line_number,
    txt(sku) as sku, cast(txt(quantity) as integer) as quantity,
    cast(txt(unit_price) as decimal(28, 6)) as unit_price,
    coalesce(cast(txt(discount_amount) as decimal(28, 6)), 0) as discount_amount,
    cast(txt(quantity) as integer) * cast(txt(unit_price) as decimal(28, 6))
    - coalesce(cast(txt(discount_amount) as decimal(28, 6)), 0) as line_amount
from wh.raw.shop_order_lines
qualify row_number() over (
    partition by txt(order_id), cast(txt(line_number) as integer)
    order by _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.pos_receipts as
select
    txt(receipt_id) as receipt_id, txt(store_id) as store_id,
    ts(purchased_at) as purchased_at, upper(txt(currency)) as currency,
    cast(txt(total_amount) as decimal(28, 6)) as total_amount,
    txt(loyalty_card_id) as loyalty_card_id,
    coalesce(lower(txt(status)), 'completed') as status, ts(updated_at) as updated_at,
    _delivery_date as delivered_on
from wh.raw.pos_receipts
qualify row_number() over (
    partition by txt(receipt_id)
    order by ts(updated_at) desc nulls last, _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.pos_receipt_lines as
select
    txt(receipt_id) || '-' || cast(cast(txt(line_number) as integer) as varchar)
        as receipt_line_id,
    txt(receipt_id) as receipt_id, cast(txt(line_number) as integer) as line_number,
    txt(sku) as sku, cast(txt(quantity) as integer) as quantity,
    cast(txt(unit_price) as decimal(28, 6)) as unit_price,
    cast(txt(quantity) as integer) * cast(txt(unit_price) as decimal(28, 6)) as line_amount
from wh.raw.pos_receipt_lines
qualify row_number() over (
    partition by txt(receipt_id), cast(txt(line_number) as integer)
    order by _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.web_events as
select
    txt(event_id) as event_id, ts(event_at) as event_at, lower(txt(event_type)) as event_type,
    lower(txt(event_type)) in (
        'page_view', 'product_view', 'add_to_cart', 'remove_from_cart',
        'checkout_started', 'login', 'email_open', 'email_click'
    ) as is_known_event_type,
    txt(anonymous_id) as anonymous_id, nullif(lower(trim(user_email)), '') as user_email,
    txt(crm_id) as crm_id, txt(session_id) as session_id, txt(sku) as sku, txt(url) as url,
    lower(txt(device)) as device, txt(utm_source) as utm_source,
    txt(utm_medium) as utm_medium, txt(utm_campaign) as utm_campaign
from wh.raw.web_events
qualify row_number() over (
    partition by txt(event_id) order by _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.consent_events as
select
    txt(consent_event_id) as consent_event_id, lower(txt(channel)) as channel,
    lower(txt(status)) as status, ts(event_at) as event_at,
    nullif(lower(trim(email)), '') as email, txt(crm_id) as crm_id,
    norm_phone(txt(phone)) as phone, txt(source) as consent_source,
    txt(policy_version) as policy_version
from wh.raw.consent_events
qualify row_number() over (
    partition by txt(consent_event_id) order by _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.catalog_products as
select
    txt(sku) as sku, lower(txt(category)) as category, txt(name) as product_name,
    txt(brand) as brand, cast(txt(list_price) as decimal(28, 6)) as list_price,
    upper(txt(currency)) as currency,
    coalesce(cast(txt(is_active) as boolean), true) as is_active
from wh.raw.catalog_products
qualify row_number() over (
    partition by txt(sku) order by _delivery_date desc, _file desc, _line desc
) = 1;

create or replace table hand_staging.fx_rates as
select
    upper(txt(currency)) || '@' || cast(cast(txt(rate_date) as date) as varchar) as fx_rate_id,
    cast(txt(rate_date) as date) as rate_date, upper(txt(currency)) as currency,
    cast(txt(rate) as decimal(28, 6)) as rate
from wh.raw.fx_rates
qualify row_number() over (
    partition by cast(txt(rate_date) as date), upper(txt(currency))
    order by _delivery_date desc, _file desc, _line desc
) = 1;

-- ----------------------------------------------------------------------------- identity links
create or replace table hand_marts.identifiers_linked as
select customer_id, source, source_key, linked_by, first_seen_at from wh.identity.record_links;

create or replace table hand_marts.customer_identifiers as
select * from hand_marts.identifiers_linked where source not in ('shop_order', 'pos_receipt');

-- orders and receipts in one shape, attributed through the links, in the reporting currency
create or replace table hand_marts.orders_unified as
with rates as (
    select currency, rate, rate_date as valid_from,
           lead(rate_date) over (partition by currency order by rate_date) as valid_until
    from hand_staging.fx_rates
),
unioned as (
    select o.order_id, 'online' as channel, o.ordered_at, o.status, o.currency,
           o.total_amount - o.discount_amount as amount_in_currency, l.customer_id,
           l.linked_by as attributed_by
    from hand_staging.shop_orders o
    left join hand_marts.identifiers_linked l
        on l.source = 'shop_order' and l.source_key = o.order_id
    union all
    select r.receipt_id, 'store', r.purchased_at, r.status, r.currency, r.total_amount,
           l.customer_id, l.linked_by
    from hand_staging.pos_receipts r
    left join hand_marts.identifiers_linked l
        on l.source = 'pos_receipt' and l.source_key = r.receipt_id
)
select u.*,
       case when u.currency = '{reporting_currency}' then u.amount_in_currency
            else u.amount_in_currency * rates.rate end as amount,
       (case when u.currency = '{reporting_currency}' then u.amount_in_currency
             else u.amount_in_currency * rates.rate end) is null as is_missing_fx_rate
from unioned u
left join rates
    on u.currency = rates.currency and cast(u.ordered_at as date) >= rates.valid_from
    and (rates.valid_until is null or cast(u.ordered_at as date) < rates.valid_until);

create or replace table hand_marts.fct_orders as
select order_id, customer_id, attributed_by, channel, ordered_at,
       cast(ordered_at as date) as ordered_on, status, currency, amount_in_currency,
       cast(amount as double) as amount
from hand_marts.orders_unified where not is_missing_fx_rate;

create or replace table hand_marts.quarantined_orders as
select order_id, channel, customer_id, ordered_at, currency, amount_in_currency,
       'no exchange rate for ' || currency || ' on or before '
       || cast(cast(ordered_at as date) as varchar) as reason
from hand_marts.orders_unified where is_missing_fx_rate;

-- ----------------------------------------------------------------------------- golden record
create or replace table hand_marts.dim_customers as
with records as (
    select l.customer_id, c.*
    from hand_marts.identifiers_linked l
    join hand_staging.crm_customers c on l.source = 'crm' and l.source_key = c.crm_id
),
picks as (
    select customer_id, count(*) as crm_records, bool_or(is_test_account) as is_test_account
    from records group by customer_id
),
-- ties on updated_at break on crm_id, as in dbt: ranked windows, not arg_max
ranked as (
    select customer_id, email, phone, street, postcode, city, country, loyalty_card_id,
        first_name, last_name, gender,
        row_number() over (partition by customer_id order by (last_name is null), updated_at desc, crm_id) as name_rank,
        row_number() over (partition by customer_id order by (email is null), updated_at desc, crm_id) as email_rank,
        row_number() over (partition by customer_id order by (phone is null), updated_at desc, crm_id) as phone_rank,
        row_number() over (partition by customer_id order by (street is null), updated_at desc, crm_id) as address_rank,
        row_number() over (partition by customer_id order by (loyalty_card_id is null), updated_at desc, crm_id) as card_rank
    from records
),
birth_votes as (
    select customer_id, birth_date
    from records where birth_date is not null
    group by customer_id, birth_date
    qualify row_number() over (
        partition by customer_id order by count(*) desc, max(updated_at) desc
    ) = 1
),
customers as (
    select customer_id, min(first_seen_at) as first_seen_at, count(*) as source_records
    from hand_marts.identifiers_linked group by customer_id
),
guest_emails as (
    select customer_id, min(source_key) as email
    from hand_marts.identifiers_linked where source = 'shop_email' group by customer_id
)
select
    c.customer_id,
    n.first_name, n.last_name, n.gender,
    coalesce(e.email, g.email) as email,
    p.phone, b.birth_date,
    a.street, a.postcode, a.city, a.country,
    k.loyalty_card_id,
    c.first_seen_at, c.source_records,
    coalesce(s.crm_records, 0) as crm_records,
    coalesce(s.crm_records, 0) > 0 as has_crm_record,
    coalesce(s.is_test_account, false) as is_test_account
from customers c
left join ranked n on n.customer_id = c.customer_id and n.name_rank = 1
left join ranked e on e.customer_id = c.customer_id and e.email_rank = 1
left join ranked p on p.customer_id = c.customer_id and p.phone_rank = 1
left join ranked a on a.customer_id = c.customer_id and a.address_rank = 1
left join ranked k on k.customer_id = c.customer_id and k.card_rank = 1
left join birth_votes b on b.customer_id = c.customer_id
left join picks s on s.customer_id = c.customer_id
left join guest_emails g on g.customer_id = c.customer_id;

-- ----------------------------------------------------------------------------- RFM + engagement
create or replace table hand_marts.customer_features as
with snapshots as (
    select unnest({snapshot_dates}) as snapshot_date
),
customer_snapshots as (
    select c.customer_id, s.snapshot_date, cast(c.first_seen_at as date) as first_seen_on
    from hand_marts.dim_customers c, snapshots s
    where cast(c.first_seen_at as date) <= s.snapshot_date and not c.is_test_account
),
lines as (
    select order_id, sku, discount_amount > 0 as is_discounted from hand_staging.shop_order_lines
    union all
    select receipt_id, sku, false from hand_staging.pos_receipt_lines
),
purchases as (
    select customer_id, order_id, ordered_on, channel, amount
    from hand_marts.fct_orders where status = 'completed' and customer_id is not null
),
baskets as (
    select p.order_id, count(*) as basket_lines, count(*) filter (where l.is_discounted) as discounted_lines
    from purchases p join lines l using (order_id) group by p.order_id
),
categories as (
    select p.customer_id, pr.category, min(p.ordered_on) as first_bought_on
    from purchases p join lines l using (order_id) join hand_staging.catalog_products pr using (sku)
    group by p.customer_id, pr.category
),
purchase_features as (
    select
        cs.customer_id, cs.snapshot_date,
        count(p.ordered_on) as frequency,
        coalesce(sum(p.amount), 0) as monetary,
        max(p.ordered_on) as last_purchase_on,
        min(p.ordered_on) as first_purchase_on,
        count(*) filter (where p.ordered_on > cs.snapshot_date - 90) as frequency_90d,
        coalesce(sum(p.amount) filter (where p.ordered_on > cs.snapshot_date - 90), 0) as monetary_90d,
        count(*) filter (where p.ordered_on > cs.snapshot_date - 365) as frequency_365d,
        coalesce(sum(p.amount) filter (where p.ordered_on > cs.snapshot_date - 365), 0) as monetary_365d,
        count(*) filter (where p.channel = 'online') as online_orders,
        count(b.order_id) as orders_with_lines,
        coalesce(sum(b.basket_lines), 0) as basket_lines,
        coalesce(sum(b.basket_lines) filter (where p.channel = 'online'), 0) as online_lines,
        coalesce(sum(b.discounted_lines), 0) as discounted_lines
    from customer_snapshots cs
    left join purchases p on p.customer_id = cs.customer_id and cs.snapshot_date >= p.ordered_on
    left join baskets b on b.order_id = p.order_id
    group by cs.customer_id, cs.snapshot_date
),
category_features as (
    select cs.customer_id, cs.snapshot_date, count(*) as distinct_categories
    from customer_snapshots cs
    join categories c on c.customer_id = cs.customer_id and cs.snapshot_date >= c.first_bought_on
    group by cs.customer_id, cs.snapshot_date
),
events as (
    select l.customer_id, cast(e.event_at as date) as event_on, e.event_type, e.session_id
    from hand_staging.web_events e
    join hand_marts.identifiers_linked l on l.source = 'web_cookie' and l.source_key = e.anonymous_id
),
web_features as (
    select
        cs.customer_id, cs.snapshot_date,
        count(distinct e.session_id) filter (where e.event_on > cs.snapshot_date - 30) as web_sessions_30d,
        count(*) filter (where e.event_type = 'product_view' and e.event_on > cs.snapshot_date - 30) as product_views_30d,
        count(*) filter (where e.event_type = 'add_to_cart' and e.event_on > cs.snapshot_date - 30) as cart_adds_30d,
        count(*) filter (where e.event_type = 'email_open' and e.event_on > cs.snapshot_date - 90) as email_opens_90d,
        count(*) filter (where e.event_type = 'email_click' and e.event_on > cs.snapshot_date - 90) as email_clicks_90d,
        max(e.event_on) as last_web_event_on,
        count(distinct e.session_id) filter (where e.event_type <> 'email_open' and e.event_on > cs.snapshot_date - 90) as browse_sessions_90d,
        count(distinct e.session_id) filter (where e.event_type <> 'email_open' and e.event_on > cs.snapshot_date - 365) as browse_sessions_365d,
        count(*) filter (where e.event_type = 'email_open' and e.event_on > cs.snapshot_date - 30) as email_opens_30d,
        count(*) filter (where e.event_type = 'email_open' and e.event_on > cs.snapshot_date - 365) as email_opens_365d,
        max(e.event_on) filter (where e.event_type <> 'email_open') as last_browse_on,
        max(e.event_on) filter (where e.event_type = 'email_open') as last_email_open_on
    from customer_snapshots cs
    join events e on e.customer_id = cs.customer_id and cs.snapshot_date >= e.event_on
    group by cs.customer_id, cs.snapshot_date
)
select
    cs.customer_id,
    cs.snapshot_date,
    cast(cs.snapshot_date - pf.last_purchase_on as integer) as recency_days,
    cast(pf.frequency as integer) as frequency,
    cast(pf.monetary as double) as monetary,
    cast(cs.snapshot_date - cs.first_seen_on as integer) as tenure_days,
    cast(case when pf.frequency > 0 then pf.monetary / pf.frequency end as double) as avg_order_value,
    cast(pf.frequency_90d as integer) as frequency_90d,
    cast(pf.monetary_90d as double) as monetary_90d,
    cast(case when pf.frequency > 0 then 1.0 * pf.online_orders / pf.frequency end as double) as online_share,
    cast(coalesce(w.web_sessions_30d, 0) as integer) as web_sessions_30d,
    cast(coalesce(w.product_views_30d, 0) as integer) as product_views_30d,
    cast(coalesce(w.cart_adds_30d, 0) as integer) as cart_adds_30d,
    cast(coalesce(w.email_opens_90d, 0) as integer) as email_opens_90d,
    cast(coalesce(w.email_clicks_90d, 0) as integer) as email_clicks_90d,
    cast(cs.snapshot_date - w.last_web_event_on as integer) as days_since_last_web_event,
    cast(cs.snapshot_date - pf.first_purchase_on as integer) as days_since_first_purchase,
    cast(case when pf.frequency > 1
        then 1.0 * (pf.last_purchase_on - pf.first_purchase_on) / (pf.frequency - 1) end as double)
        as avg_days_between_purchases,
    cast(pf.frequency_365d as integer) as frequency_365d,
    cast(pf.monetary_365d as double) as monetary_365d,
    cast(case when pf.orders_with_lines > 0 then 1.0 * pf.basket_lines / pf.orders_with_lines end as double)
        as avg_basket_lines,
    cast(case when pf.online_lines > 0 then 1.0 * pf.discounted_lines / pf.online_lines end as double)
        as discount_share,
    cast(coalesce(cf.distinct_categories, 0) as integer) as distinct_categories,
    cast(coalesce(w.browse_sessions_90d, 0) as integer) as browse_sessions_90d,
    cast(coalesce(w.browse_sessions_365d, 0) as integer) as browse_sessions_365d,
    cast(coalesce(w.email_opens_30d, 0) as integer) as email_opens_30d,
    cast(coalesce(w.email_opens_365d, 0) as integer) as email_opens_365d,
    cast(cs.snapshot_date - w.last_browse_on as integer) as days_since_last_browse,
    cast(cs.snapshot_date - w.last_email_open_on as integer) as days_since_last_email_open
from customer_snapshots cs
left join purchase_features pf using (customer_id, snapshot_date)
left join category_features cf using (customer_id, snapshot_date)
left join web_features w using (customer_id, snapshot_date);
