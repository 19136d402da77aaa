"""What a divergence costs, and whether the day passes the billing gate.

- The catalog (``video_catalog``) says which videos are billable and their rate per 1,000
  views, in which currency. A video missing from it is treated as billable at rate 0: it
  is not known to be free, so it can fail the gate, but its money is not guessed
  (``videos_not_in_catalog`` counts such videos among the divergent ones).
- Tolerance (``reconcile.tolerances``): a cell is within it when |delta| <= abs + rel x
  batch; billable videos default to exact, non-billable ones to 10 views and 1%.
- ``billing_cells_divergent``: billable cells beyond tolerance, whatever the cause;
  ``money_at_risk``: the sum over them of |delta| x rate / 1000, per currency, in exact
  decimals (``MONEY_TYPE``, never floating point). A catalog row loaded before currencies
  were kept has ``UNKNOWN_CURRENCY``.
- The gate fails when a billable cell beyond tolerance has a cause other than ``late`` or
  ``after_cutoff``. Both are accepted by design, and the batch is what becomes
  authoritative (and billed): the speed layer drops events behind its watermark, which the
  batch counts (``late``); a speed layer catching up across midnight counts views of D
  that arrived after the cutoff, which the day's rule leaves out of the batch
  (``after_cutoff``). Every other cause means one of the two numbers is wrong for a reason
  the design does not allow.
  Non-billable cells beyond their tolerance never fail the gate (no money depends on them);
  they are counted in ``nonbillable_cells_beyond_tolerance`` and shown in the report.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from storage.catalog import UNKNOWN_CURRENCY

from reconcile.causes import AFTER_CUTOFF, LATE
from reconcile.tolerances import Tolerances

ACCEPTED_CAUSES = (LATE, AFTER_CUTOFF)
# |delta| x a rate of at most 6 decimal places / 1000: 9 decimal places hold every amount exactly.
MONEY_TYPE = "decimal(38, 9)"
DELTA_TYPE, RATE_TYPE = "decimal(12, 0)", "decimal(18, 6)"


def _beyond(delta: Column, batch: Column, absolute: float, relative: float) -> Column:
    return F.abs(delta) > F.lit(absolute) + F.lit(relative) * batch


def bill(classified: DataFrame, catalog: DataFrame, tolerances: Tolerances) -> DataFrame:
    """Classified divergent cells with billable, rate_per_1000, in_catalog,
    beyond_tolerance, fails_gate, money (|delta| x rate / 1000 on billing cells, else 0)
    and its currency (NULL for a video not in the catalog)."""
    rates = catalog.select("video_id", "billable", "rate_per_1000", "currency", F.lit(True).alias("in_catalog"))
    joined = classified.join(rates, on="video_id", how="left")
    billable = F.coalesce("billable", F.lit(True))
    delta, batch = F.col("delta"), F.col("batch")
    beyond = F.when(billable, _beyond(delta, batch, tolerances.billable_abs, tolerances.billable_rel)).otherwise(
        _beyond(delta, batch, tolerances.nonbillable_abs, tolerances.nonbillable_rel))
    is_billing_cell = billable & beyond
    # Types small enough that Spark never rounds: |delta| decimal(12, 0) x rate decimal(18, 6)
    # is decimal(31, 6), and / 1000 keeps more than 9 places. Both as decimal(38, 9), Spark
    # cut the product to 6 places before dividing: amounts under 0.000001 were lost.
    product = F.abs(delta).cast(DELTA_TYPE) * F.coalesce("rate_per_1000", F.lit(0)).cast(RATE_TYPE)
    money = F.when(is_billing_cell, product / F.lit(1000).cast("decimal(4, 0)")).otherwise(F.lit(0))
    return joined.withColumns({
        "billable": billable,
        "in_catalog": F.coalesce("in_catalog", F.lit(False)),
        "beyond_tolerance": beyond,
        "fails_gate": is_billing_cell & ~F.col("cause").isin(*ACCEPTED_CAUSES),
        "money": money.cast(MONEY_TYPE),
        "currency": F.when(F.col("in_catalog"), F.coalesce("currency", F.lit(UNKNOWN_CURRENCY))),
    })
