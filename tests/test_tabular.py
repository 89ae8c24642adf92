"""convert: CSV/TSV/parquet + YAML schema -> the same per-day shard layout."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsearch.cli import main
from recsearch.data.loader import ShardBatches
from recsearch.data.tabular import convert_table
from tests.conftest import MOVIELENS, REPO

CSV = """user,item,clicked,price,tags,ts
u1,a,1,3.5,x|y,40
u2,b,0,,y,10
u1,,1,1.0,,30
u3,a,0,-2,x|x|z,20
u1,c,1,7,z,50
u2,a,0,2,,60
"""


def write_schema(tmp_path: Path, text: str) -> Path:
    (tmp_path / "t.csv").write_text(CSV)
    p = tmp_path / "schema.yaml"
    p.write_text(text)
    return p


BASE = """source: t.csv
label: clicked
dense: [price]
sparse: [user, item]
multi_valued: [{name: tags, column: tags, separator: "|"}]
timestamp: ts
days: 2
vocab_days: 0
"""


def test_csv_with_multi_valued_and_chronological_days(tmp_path: Path) -> None:
    m = convert_table(str(write_schema(tmp_path, BASE)), str(tmp_path / "out"))
    assert {d: r["rows"] for d, r in m["days"].items()} == {"0": 3, "1": 3}
    assert m["sparse_names"] == ["user", "item"] and m["multi_valued_names"] == ["tags"]
    labels = np.load(tmp_path / "out" / "day_0_labels.npy")[:, 0]
    assert labels.tolist() == [0, 0, 1]  # ts 10, 20, 30
    dense = np.load(tmp_path / "out" / "day_0_dense.npy")[:, 0]
    np.testing.assert_allclose(dense, [0, 0, np.log(2)], rtol=1e-6)  # missing and negative -> 0
    batch = next(iter(ShardBatches(str(tmp_path / "out"), [0, 1], 6, shuffle=False)))
    kjt = batch.sparse_features.to_dict()
    # tags over ts order: y | x,x,z | (empty) | x,y | z | (empty); vocab from day 0: x(2), y/z(1 each)
    assert kjt["tags"].lengths().tolist() == [1, 3, 0, 2, 1, 0]
    vocab = json.loads((tmp_path / "out" / "vocab" / "tags.json").read_text())
    assert vocab["values_by_id"] == ["x", "y", "z"]
    assert kjt["tags"].values().tolist() == [3, 2, 2, 4, 2, 3, 4]
    # item: day 0 has b, a, missing (ties keep first-seen order: b=2, a=3); day 1's unseen c -> 1
    assert kjt["item"].values().tolist() == [2, 3, 0, 3, 1, 3]


def test_tsv_input_gives_the_same_shards_as_csv(tmp_path: Path) -> None:
    csv_out = tmp_path / "csv"
    convert_table(str(write_schema(tmp_path, BASE)), str(csv_out))
    (tmp_path / "t.tsv.gz").write_bytes(gzip.compress(CSV.replace(",", "\t").encode()))
    (tmp_path / "tsv.yaml").write_text(BASE.replace("source: t.csv", "source: t.tsv.gz"))
    assert main(["convert", "--schema", str(tmp_path / "tsv.yaml"), "--out", str(tmp_path / "tsv")]) == 0
    shards = sorted(p.name for p in csv_out.glob("day_*.npy"))
    assert "day_1_mv_tags_values.npy" in shards
    for name in shards:
        assert (tmp_path / "tsv" / name).read_bytes() == (csv_out / name).read_bytes(), name
    a = json.loads((csv_out / "manifest.json").read_text())
    b = json.loads((tmp_path / "tsv" / "manifest.json").read_text())
    assert a["num_embeddings"] == b["num_embeddings"] and a["days"].keys() == b["days"].keys()


def test_schema_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown schema key\(s\) \['colour'\]"):
        convert_table(str(write_schema(tmp_path, BASE + "colour: red\n")), str(tmp_path / "o"))
    with pytest.raises(ValueError, match="sparse column 'nope' is not in the table"):
        convert_table(
            str(write_schema(tmp_path, BASE.replace("[user, item]", "[user, nope]"))), str(tmp_path / "o")
        )
    with pytest.raises(ValueError, match="must hold 0/1"):
        convert_table(
            str(write_schema(tmp_path, BASE.replace("label: clicked", "label: price"))), str(tmp_path / "o")
        )


@pytest.mark.integration  # needs the data fetched by `make test` (tools/fetch_movielens.sh)
def test_real_movielens_100k_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (MOVIELENS / "MovieLens100k_data.parquet.brotli").exists(), "run tools/fetch_movielens.sh"
    out = tmp_path / "ml"
    schema = REPO / "configs" / "datasets" / "movielens100k.yaml"
    assert (
        main(["convert", "--schema", str(schema), "--data-root", str(MOVIELENS), "--output", str(out)]) == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    ratings = pq.read_table(MOVIELENS / "MovieLens100k_data.parquet.brotli").to_pydict()
    assert sum(r["rows"] for r in m["days"].values()) == len(ratings["rating"]) == 100_000
    labels = np.concatenate([np.load(out / f"day_{d}_labels.npy")[:, 0] for d in range(5)])
    assert labels.sum() == sum(r > 3 for r in ratings["rating"])
    assert m["num_embeddings"][m["sparse_names"].index("gender")] == 4  # M, F + 2 reserved
    batches = list(ShardBatches(str(out), [4], 4096))
    genres = batches[0].sparse_features.to_dict()["genres"]
    assert genres.lengths().max() > 1 and genres.values().max() < m["num_embeddings"][-1]
    assert main(["inspect", "--data", str(out), "--num-batches", "1"]) == 0
    assert "5 days, 100,000 rows" in capsys.readouterr().out
