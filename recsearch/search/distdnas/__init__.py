"""DistDNAS (Zhang et al., 2023, "DistDNAS: Search Efficient Feature Interactions within 2 Hours").

A differentiable supernet of choice blocks (``supernet``), a FLOPs cost model whose
permutation importances weight a cost regularizer (``cost``), one search job per data
day (``job``) launched through torchx and averaged (``launch``), and threshold
discretization into the shared architecture JSON (``discretize``).
"""
