"""Joint search: the interaction graph and the embedding sizes in one pipeline, which none of
the papers does. An interaction search (any registered method, e.g. DistDNAS or NASRec)
finds the graph; an embedding-size search (a method that declares ``base_keys``, e.g. DNIS
or AdaS&S) then searches per-feature sizes with that graph as its base model. The result is
one arch JSON: the found graph over the found mixed-dimension tables."""

from recsearch.search.joint.config import JointConfig
from recsearch.search.registry import SearchMethod, register_method

register_method(
    SearchMethod(
        name="joint",
        summary="Joint: an interaction search, then an embedding-size search on the graph it found",
        config=JointConfig,
        entry="recsearch.search.joint.search:run",
        description=(
            "Joint interaction + embedding-size search (recsearch's own; the papers search one or the\n"
            "other). Runs `interaction` (a registered method, its `interaction_preset`) into\n"
            "DIR/interaction, then `sizes` (a method that searches the embedding sizes of a base model)\n"
            "into DIR/sizes with the found arch.json as its base model at the found graph's width.\n"
            "Both stages are ordinary searches under the contract (their own reports, resumable, their\n"
            "own torchx jobs) on the same --train-days and --val-day, seeded from `seed`. DIR/arch.json\n"
            "is the found graph over the found mixed-dimension tables."
        ),
    )
)
