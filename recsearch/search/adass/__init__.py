"""AdaS&S (Wei, Yang et al., "AdaS&S: a One-Shot Supernet Approach for Automatic Embedding
Size Search in Deep Recommender System").

A supernet holds every candidate size of every field (independent tables, or slices of one
shared table) transformed to one width; it trains one adaptively sampled subnet per step
(``sampling``); a transformer policy then searches one size per field by REINFORCE on the
subnets' validation AUC with inherited weights, penalized for size (``policy``); the chosen
sizes are retrained from scratch as real mixed-dimension TorchRec tables.
"""

from recsearch.search.adass.config import AdassConfig
from recsearch.search.registry import SearchMethod, register_method

register_method(
    SearchMethod(
        name="adass",
        summary="AdaS&S: one-shot supernet of embedding sizes, adaptive sampling, RL size search",
        config=AdassConfig,
        entry="recsearch.search.adass.search:run",
        random_arch="recsearch.search.adass.policy:random_arch",
        description=(
            "AdaS&S (Wei, Yang et al.). Trains a supernet of candidate embedding sizes per field (each\n"
            "size linear + BatchNorm to common_dim) on --train-days, one subnet per step drawn by adaptive\n"
            "sampling (sizes by embedding variance, fields by gradient and L1 scores); then a transformer\n"
            "policy picks one size per field by REINFORCE on the subnets' --val-day AUC with inherited\n"
            "weights, penalized by the resource and competition terms of `mode` (effect-first or\n"
            "resource-first); `searches` seeds give the stability report. DIR/arch.json holds the chosen\n"
            "sizes as real mixed-dimension tables, retrained from scratch and scored on --val-day."
        ),
        base_keys=("base_model", "common_dim"),
    )
)
