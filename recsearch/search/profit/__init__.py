"""PROFIT (Gao et al., "Progressive Feature Interaction Search for Deep Sparse Network",
NeurIPS 2021).

Explicit feature crosses of order 1..O over the fields (the categorical features and,
optionally, the numeric ones bucketized): a search network weighs every cross of an
order by symmetric low-rank CP weights, summed over all crosses without enumerating them
(``cp``); the orders are searched one after another with the lower ones frozen
(``search``); the top N_o crosses per order (``selection``, exact branch and bound) become
``field_cross`` blocks of an ordinary arch JSON (``to_arch``), retrained from scratch.
"""

from recsearch.search.profit.config import ProfitConfig
from recsearch.search.registry import SearchMethod, register_method

register_method(
    SearchMethod(
        name="profit",
        summary="PROFIT: explicit feature crosses, low-rank CP weights, searched order by order",
        config=ProfitConfig,
        entry="recsearch.search.profit.search:run",
        random_arch="recsearch.search.profit.to_arch:random_arch",
        description=(
            "PROFIT (Gao et al., NeurIPS 2021). Weighs every cross (element-wise product of field\n"
            "embeddings) of orders 1..max_order with A_c = sum_r prod_k beta_r[c_k] (rank-R symmetric CP),\n"
            "summed over all crosses through elementary symmetric polynomials. Network weights train on\n"
            "--train-days, beta on --val-day (first-order bilevel), order 1 first, then each higher\n"
            "order with the lower ones frozen (mode=progressive; one-step, full-space and random are the\n"
            "paper's ablations). The top_n crosses per order, by feature name, become DIR/arch.json\n"
            "(field_cross blocks), retrained from scratch on --train-days and scored on --val-day."
        ),
    )
)
