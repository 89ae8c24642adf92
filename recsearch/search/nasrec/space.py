"""The NASRec search space: architectures as genotypes, their sampling and mutation.

An architecture is N choice blocks (Zhang et al., "NASRec", WWW 2023, Sec. 3). Block i
(1-based) picks one dense op and one sparse op, an output width for each, and which
earlier outputs it reads: source 0 is the raw input (dense features, embeddings), source
j the output of block j. Four connection sets, as in the released code: ``dense_in``
(FC and DotProduct's dense side), ``sparse_in`` (the sparse ops and DotProduct's sparse
side), and one ``left`` and one ``right`` source for the binary Sum and Gating. Optional
mergers: Project-Concat (the dense output joins the sparse output as extra fields) and
an FM term of the sparse input added to the dense output.

Pure Python and NumPy: sampling (single-operator, any-connection), mutation and a
canonical encoding (for hashing and JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from recsearch.search.nasrec.config import NASRecSpace

MACRO = ("dense_in", "sparse_in", "left", "right")  # what a connection mutation may redraw
MICRO = ("dense_ops", "sparse_ops", "dense_dim", "sparse_fields", "project_concat", "fm")


@dataclass(frozen=True)
class Block:
    """One choice block of a path through the supernet; a subnet has one op of each kind and
    one left / right source (the supernet's full path has them all)."""

    dense_ops: tuple[str, ...]
    sparse_ops: tuple[str, ...]
    dense_dim: int
    sparse_fields: int
    dense_in: tuple[int, ...]
    sparse_in: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    project_concat: bool
    fm: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Block:
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return Block(**fields)


Genotype = tuple[Block, ...]


def encode(genotype: Genotype) -> str:
    """A canonical string of a genotype (the key of the visited set, and its JSON)."""
    return json.dumps([b.to_dict() for b in genotype], sort_keys=True, separators=(",", ":"))


def decode(text: str | list[dict[str, Any]]) -> Genotype:
    items = json.loads(text) if isinstance(text, str) else text
    return tuple(Block.from_dict(d) for d in items)


def _connections(rng: np.random.Generator, sources: int, most: int) -> tuple[int, ...]:
    """1 + Binomial(min(n - 1, most - 1), 0.5) distinct sources out of ``sources``, sorted."""
    k = 1 + int(rng.binomial(min(sources - 1, most - 1), 0.5))
    return tuple(sorted(int(x) for x in rng.choice(sources, size=k, replace=False)))


def _draw(rng: np.random.Generator, options: list[Any] | tuple[Any, ...]) -> Any:
    return options[int(rng.integers(len(options)))]


def sample_block(rng: np.random.Generator, i: int, space: NASRecSpace) -> Block:
    """Block ``i`` (1-based) of a random subnet: single-operator, any-connection."""
    return Block(
        dense_ops=(_draw(rng, space.dense_ops),),
        sparse_ops=(_draw(rng, space.sparse_ops),),
        dense_dim=int(_draw(rng, space.dense_dims)),
        sparse_fields=int(_draw(rng, space.sparse_fields)),
        dense_in=_connections(rng, i, space.max_connections),
        sparse_in=_connections(rng, i, space.max_connections),
        left=(int(rng.integers(i)),),
        right=(int(rng.integers(i)),),
        project_concat=bool(space.project_concat and rng.random() < 0.5),
        fm=bool(space.fm_merger and rng.random() < 0.5),
    )


def sample(rng: np.random.Generator, space: NASRecSpace) -> Genotype:
    """A random subnet of the space."""
    return tuple(sample_block(rng, i, space) for i in range(1, space.num_blocks + 1))


BINARY = ("sum", "gating")


def sources(block: Block) -> set[int]:
    """The sources a subnet block reads: its dense op's inputs and its sparse inputs."""
    used = set(block.sparse_in)
    return used | (set(block.left + block.right) if block.dense_ops[0] in BINARY else set(block.dense_in))


def canonical(genotype: Genotype, space: NASRecSpace) -> Genotype:
    """The model a genotype spells, in one spelling: connection sets the block's ops do not
    read are set to source 0, and blocks whose outputs never reach the logit are replaced by
    one fixed placeholder (they do not change the model; ``to_arch`` leaves them out). Two
    genotypes with the same canonical form are the same model, so evolution scores it once;
    the genotype itself keeps its unused genes, which a later mutation may bring back."""
    live = live_blocks(genotype)
    blocks = []
    for i, b in enumerate(genotype, start=1):
        if i not in live:
            b = Block(
                dense_ops=(space.dense_ops[0],),
                sparse_ops=(space.sparse_ops[0],),
                dense_dim=min(space.dense_dims),
                sparse_fields=min(space.sparse_fields),
                dense_in=(0,),
                sparse_in=(0,),
                left=(0,),
                right=(0,),
                project_concat=False,
                fm=False,
            )
        elif b.dense_ops[0] in BINARY:
            b = replace(b, dense_in=(0,))
        else:
            b = replace(b, left=(0,), right=(0,))
        blocks.append(b)
    return tuple(blocks)


def live_blocks(genotype: Genotype) -> set[int]:
    """Blocks (1-based) whose outputs reach the logit."""
    live = {len(genotype)}
    for i in range(len(genotype), 0, -1):
        if i in live:
            live |= sources(genotype[i - 1]) - {0}
    return live


def full_path(space: NASRecSpace) -> Genotype:
    """The whole supernet: every op, the largest widths, every connection, both mergers."""
    return tuple(
        Block(
            dense_ops=space.dense_ops,
            sparse_ops=space.sparse_ops,
            dense_dim=max(space.dense_dims),
            sparse_fields=max(space.sparse_fields),
            dense_in=tuple(range(i)),
            sparse_in=tuple(range(i)),
            left=tuple(range(i)),
            right=tuple(range(i)),
            project_concat=space.project_concat,
            fm=space.fm_merger,
        )
        for i in range(1, space.num_blocks + 1)
    )


def mutate_once(rng: np.random.Generator, genotype: Genotype, space: NASRecSpace) -> Genotype:
    """One mutation (NASRec Sec. 4.4): in a random block, redraw one connection set (macro) or
    one op, width or merger choice (micro), each with probability 1/2. The redraw is repeated
    until the model changes (a gene the model does not use changes nothing)."""
    blocks = list(genotype)
    i = int(rng.integers(len(blocks)))
    block, sources_ = blocks[i], i + 1
    before = canonical(genotype, space)
    for _ in range(64):  # redraw until the model differs (some fields do not matter: try another)
        change: dict[str, Any]
        if rng.random() < 0.5:
            what = _draw(rng, MACRO)
            if what in ("left", "right"):
                change = {what: (int(rng.integers(sources_)),)}
            else:
                change = {what: _connections(rng, sources_, space.max_connections)}
        else:
            fresh = sample_block(rng, sources_, space)
            what = _draw(rng, MICRO)
            if what in ("project_concat", "fm"):
                allowed = space.project_concat if what == "project_concat" else space.fm_merger
                change = {what: bool(allowed and not getattr(block, what))}
            else:
                change = {what: getattr(fresh, what)}
        if what == "dense_ops" and change[what][0] in BINARY and block.dense_ops[0] not in BINARY:
            change.update(left=fresh.left, right=fresh.right)  # a binary op needs its two sources
        if what == "dense_ops" and change[what][0] not in BINARY and block.dense_ops[0] in BINARY:
            change.update(dense_in=fresh.dense_in)
        candidate = list(blocks)
        candidate[i] = replace(block, **change)
        if canonical(tuple(candidate), space) != before:
            return tuple(candidate)
        i = int(rng.integers(len(blocks)))  # nothing changed there: try another block
        block, sources_ = blocks[i], i + 1
    return genotype


def mutate(rng: np.random.Generator, genotype: Genotype, space: NASRecSpace, count: int) -> Genotype:
    for _ in range(count):
        genotype = mutate_once(rng, genotype, space)
    return genotype


def check(genotype: Genotype, space: NASRecSpace) -> None:
    """Raise ValueError unless ``genotype`` is a subnet of ``space``."""
    if len(genotype) != space.num_blocks:
        raise ValueError(f"a genotype of {len(genotype)} blocks in a space of {space.num_blocks}")
    for i, b in enumerate(genotype, start=1):
        where = f"block {i}"
        if len(b.dense_ops) != 1 or b.dense_ops[0] not in space.dense_ops:
            raise ValueError(f"{where}: dense op {b.dense_ops} is not one of {space.dense_ops}")
        if len(b.sparse_ops) != 1 or b.sparse_ops[0] not in space.sparse_ops:
            raise ValueError(f"{where}: sparse op {b.sparse_ops} is not one of {space.sparse_ops}")
        if b.dense_dim not in space.dense_dims or b.sparse_fields not in space.sparse_fields:
            raise ValueError(f"{where}: widths {b.dense_dim}/{b.sparse_fields} are not in the space")
        for name in ("dense_in", "sparse_in"):
            conn = getattr(b, name)
            if not conn or len(conn) > space.max_connections or len(set(conn)) != len(conn):
                raise ValueError(f"{where}: {name} {conn} must hold 1..{space.max_connections} sources")
            if min(conn) < 0 or max(conn) >= i:
                raise ValueError(f"{where}: {name} {conn} must come from sources 0..{i - 1}")
        for name in ("left", "right"):
            conn = getattr(b, name)
            if len(conn) != 1 or not 0 <= conn[0] < i:
                raise ValueError(f"{where}: {name} {conn} must be one source of 0..{i - 1}")
        if (b.project_concat and not space.project_concat) or (b.fm and not space.fm_merger):
            raise ValueError(f"{where}: a merger the space does not offer")
