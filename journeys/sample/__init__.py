"""Realistic sample exports with ground truth: people, not random rows.

`generate(customers, days, start, seed, exports_dir, truth_dir)` simulates a population and
writes what a retailer's systems would deliver about it, one folder per source and day
(`<exports>/<source>/<YYYY-MM-DD>/<entity>.<ext>`, columns exactly as `journeys.contract`),
and the truth behind it as Parquet in `truth_dir`. Same arguments, same bytes.

Behaviour. Every person has a latent archetype (loyal, bargain_hunter, occasional, one_time,
newcomer) that sets category taste, basket size, price level, online/store mix, browsing and
newsletter engagement. Purchases follow BG/NBD: Poisson at a personal rate lambda ~ Gamma(r,
alpha) from the join date, dropout after each purchase with probability p ~ Beta(a, b).
Browsing and newsletter opens fade exponentially after dropout. People joined up to
`history_days` before `start`; the first day's deliveries of CRM, shop, POS, consent and fx
carry that history (an initial load), so every purchase since a person joined is observable.

What the exports contain (rates in `GeneratorConfig`): CRM records (re-delivered on address or
e-mail change), duplicate CRM records (typos, nicknames, swapped names, moved address, second
e-mail, missing birth date), new records after a surname change; couples sharing an address and
sometimes an e-mail, a landline or a browser; colleagues ordering through a role address; shop
orders naming people by (noisy) e-mail and/or crm_id, some late, some cancelled or refunded
(re-delivered with the new status); store receipts with or without a loyalty card; web events
by cookie, identified only from a login on; consent opt-ins/outs per channel; a catalog with
updates; daily exchange rates. Defects: malformed values and broken JSON lines, duplicated
rows, missing birth dates and genders, test accounts, unknown consent channels.
Order totals are before discount: total_amount = sum(quantity * unit_price) of the lines and
discount_amount = the sum of the lines' discounts.

Truth (`truth_dir`):
- persons.parquet: person_id, archetype, lambda_per_day, p_dropout, joined_at/joined_date,
  dropout_at/dropout_date (null if alive at the end of the exported period), alive_at_end,
  names, birth date, primary e-mail, phone (E.164), address, loyalty card, cookies, partner and
  business, first_identified_date (first delivery of a record naming the person).
- purchases.parquet: every true completed purchase (cancelled/refunded orders are not
  purchases), including `future_days` after the period (exported = false) for churn labels.
- record_map.parquet (source, source_key, person_id, role): every record key in the exports:
  crm, shop_order, pos_receipt (also anonymous ones), loyalty_card, web_cookie, web_event,
  consent_event. Choice for shared family computers: the cookie is listed once per person using
  it (both rows with role `shared_family_computer`), and every web event is mapped on its own
  under `web_event`, so attribution is exact per event.
- defects.parquet: every planted defect with the record's original key, delivery date, kind and
  column; relations.parquet: couples and businesses and what they share; generator.json: the
  arguments and the full configuration (the true population parameters).
`journeys.sample.truth` turns these into churn labels, an oracle and the BG/NBD optimum.
"""

from journeys.sample.config import Archetype, GeneratorConfig
from journeys.sample.generator import generate

__all__ = ["Archetype", "GeneratorConfig", "generate"]
