"""The ``recsearch`` command: parses arguments, then calls one function per stage."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Callable

from recsearch.search.cli import add_method_stages, add_search
from recsearch.train.config import TrainConfig
from recsearch.utils.config import add_config_arguments, config_help

_DESCRIPTION = "recsearch: search, train and ship CTR models on TorchRec."
_VOCABULARY = """\
Across stages: --days / --train-days take day lists such as 0-3 or 0-2,5; --out names what a
stage writes; config keys come from --preset, then --config FILE.yaml, then key=value."""


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="generate planted raw Criteo days",
        description=(
            "Write raw Criteo-format days day_0..day_{N-1} from a known teacher model, plus "
            "truth/teacher.json, truth/day_N_prob.npy (each row's true click probability) and "
            "truth/bayes.json (each day's Bayes-optimal logloss and AUC)."
        ),
    )
    p.add_argument("--out", "--output", dest="out", required=True, help="directory for the raw days")
    p.add_argument(
        "--days",
        required=True,
        help="days to write, e.g. 0-3 (a bare number N, the older spelling, means days 0..N-1)",
    )
    p.add_argument("--rows-per-day", type=int, default=None, help="rows per day (default: the preset's)")
    p.add_argument(
        "--preset",
        default="small",
        choices=["tiny", "small", "medium"],
        help="cardinalities and teacher size (default: small)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; output is deterministic for it")
    p.add_argument("--gzip", action="store_true", help="write day_N.gz instead of day_N")
    p.set_defaults(func=_run_synth)


def _run_synth(a: argparse.Namespace) -> None:
    from recsearch.data.criteo import parse_day_range_or_count
    from recsearch.data.synth_days import synth

    s = synth(a.out, parse_day_range_or_count(a.days), a.rows_per_day, a.preset, a.seed, a.gzip)
    print(f"{'day':>4} {'rows':>10} {'ctr':>7} {'bayes logloss':>14} {'bayes auc':>10}")
    for d in s["days"]:
        print(
            f"{d['day']:>4} {d['rows']:>10,} {d['ctr']:>7.4f} "
            f"{d['bayes_logloss']:>14.5f} {d['bayes_auc']:>10.5f}"
        )


def _add_preprocess(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preprocess",
        help="raw Criteo days -> per-day binary shards",
        description=textwrap.fill(
            "Convert raw Criteo click-log days into day_{d}_{dense,sparse,labels}.npy shards (the layout "
            "TorchRec's InMemoryBinaryCriteoIterDataPipe reads) plus manifest.json and per-field "
            "vocabularies. Categorical ids are frequency ranks over --vocab-days (0 = missing, "
            "1 = rare or unseen); dense values are log1p(max(x, 0)) with missing -> 0. Every plain day "
            "file is cut into byte ranges of whole lines so one day uses all --workers; a .gz day is "
            "one stream, decompressed in one process and parsed in --workers threads. The shards are "
            "byte-identical for any number of workers. Interrupted runs resume: completed days are "
            "verified by checksum and skipped. --append adds new days to an existing directory with its "
            "saved vocabulary (unseen values get the rare id), reading no other day.",
            95,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--input", required=True, help="directory holding day_N or day_N.gz files")
    p.add_argument("--out", "--output", dest="out", required=True, help="shard directory to write")
    p.add_argument("--days", default=None, help="days to convert, e.g. 0-23 (default: all found)")
    p.add_argument(
        "--vocab-days",
        default=None,
        help="days whose values build the vocabularies (default: all --days but the last)",
    )
    p.add_argument(
        "--max-rows-per-table",
        type=int,
        default=None,
        help="cap on rows per embedding table, reserved ids included (default: 5000000; with "
        "--append: the directory's)",
    )
    p.add_argument(
        "--on-bad-line",
        choices=["error", "skip"],
        default=None,
        help="stop at a malformed line (default) or skip and count it (with --append: the directory's)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes; each day is split among them (default: the cores, here %(default)s)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="threads per worker (default 0: cores / workers, at least 1)"
    )
    p.add_argument(
        "--min-range-bytes",
        type=int,
        default=16 << 20,
        help="a plain day file is cut into byte ranges no smaller than this (default 16 MiB)",
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add --days to an existing shard directory with its saved vocabulary and options",
    )
    p.set_defaults(func=_run_preprocess)


def _run_preprocess(a: argparse.Namespace) -> None:
    from recsearch.data.append import append_days
    from recsearch.data.criteo import format_days, parse_days
    from recsearch.data.preprocess import PreprocessOptions, default_vocab_days, preprocess, raw_day_files

    if a.days is None:
        if a.append:
            raise ValueError("--append needs --days: the new day(s) to add, e.g. --days 23")
        days = sorted(raw_day_files(a.input))
        if not days:
            raise ValueError(f"{a.input}: no day_N or day_N.gz files found")
    else:
        days = parse_days(a.days)
    if a.append:
        if a.vocab_days:
            raise ValueError("--append keeps the directory's vocabulary: drop --vocab-days")
        m = append_days(
            a.input, a.out, days, a.workers, a.threads, a.max_rows_per_table, a.on_bad_line, a.min_range_bytes
        )
        rows = sum(m["days"][str(d)]["rows"] for d in days)
        held = m["options"]["days"]
        print(f"appended days {format_days(days)} ({rows:,} rows) to {a.out}; it now holds days {held}")
        return
    vocab_days = parse_days(a.vocab_days) if a.vocab_days else default_vocab_days(days)
    opts = PreprocessOptions(
        days=tuple(days),
        vocab_days=tuple(vocab_days),
        max_rows_per_table=5_000_000 if a.max_rows_per_table is None else a.max_rows_per_table,
        on_bad_line=a.on_bad_line or "error",
        workers=a.workers,
        threads=a.threads,
        min_range_bytes=a.min_range_bytes,
    )
    m = preprocess(a.input, a.out, opts)
    rows = sum(d["rows"] for d in m["days"].values())
    print(
        f"wrote days {format_days(days)} ({rows:,} rows, {m['skipped_lines']} skipped lines) to {a.out}; "
        f"vocabulary from days {format_days(vocab_days)}, table rows {m['num_embeddings']}"
    )


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="a table + YAML schema -> per-day shards",
        description=(
            "Map the columns of a CSV/TSV/parquet table (optionally joined with side tables) onto the "
            "per-day shard layout, as described by a YAML schema (see configs/datasets/)."
        ),
    )
    p.add_argument("--schema", required=True, help="YAML schema file")
    p.add_argument("--out", "--output", dest="out", required=True, help="shard directory to write")
    p.add_argument(
        "--data-root",
        default=None,
        help="directory that relative paths in the schema refer to (default: the schema file's directory)",
    )
    p.set_defaults(func=_run_convert)


def _run_convert(a: argparse.Namespace) -> None:
    from recsearch.data.tabular import convert_table

    m = convert_table(a.schema, a.out, a.data_root)
    print(
        f"wrote {len(m['days'])} days ({sum(d['rows'] for d in m['days'].values()):,} rows) to {a.out}; "
        f"{len(m['dense_names'])} dense, {len(m['sparse_names'])} sparse features, "
        f"tables {m['num_embeddings']}"
    )


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarize a shard directory",
        description=("Load a few batches (dense tensor, KeyedJaggedTensor, labels) and print a summary."),
    )
    p.add_argument("--data", required=True, help="shard directory")
    p.add_argument("--days", default=None, help="days to read (default: all)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--num-batches", type=int, default=4)
    p.set_defaults(func=_run_inspect)


def _run_inspect(a: argparse.Namespace) -> None:
    from recsearch.data.criteo import parse_days
    from recsearch.data.summary import summarize

    days = parse_days(a.days) if a.days else None
    print(summarize(a.data, days, a.batch_size, a.num_batches))


def _add_quickstart(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quickstart",
        help="run the main job (a search end to end) on an embedded default",
        description=(
            "synth (planted raw Criteo days) -> preprocess -> `recsearch search METHOD` (train days: all "
            "but the last two; validation day: the second-to-last) -> train the found model, DLRM and "
            "DCN-v2 on the train days -> evaluate on the last day -> export the found model -> a table "
            "(FLOPs, params, NE, relative NE, AUC, logloss, Bayes limit) and OUT/pareto.png. "
            "Rerunning resumes."
        ),
    )
    p.add_argument("--out", "--workdir", dest="out", default="runs/quickstart", help="where everything goes")
    p.add_argument("--method", default="distdnas", help="search method (see `recsearch search ls`)")
    p.add_argument("--search-preset", default="small", help="the method's config preset (default small)")
    p.add_argument("--train-preset", default="small", help="training preset, configs/train (default small)")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "medium"], help="synth preset")
    p.add_argument(
        "--days",
        default="0-4",
        help="days to generate (default 0-4; a bare N means 0..N-1); the last is held out for the "
        "final evaluation, the one before it is the search's validation day",
    )
    p.add_argument("--rows-per-day", type=int, default=100_000, help="rows per day (default 100,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="search jobs at a time (default 2)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="search config overrides")
    p.set_defaults(func=_run_quickstart)


def _run_quickstart(a: argparse.Namespace) -> None:
    from recsearch.data.criteo import parse_day_range_or_count
    from recsearch.quickstart import QuickstartOptions, quickstart

    quickstart(
        QuickstartOptions(
            out=a.out,
            method=a.method,
            search_preset=a.search_preset,
            train_preset=a.train_preset,
            preset=a.preset,
            days=parse_day_range_or_count(a.days),
            rows_per_day=a.rows_per_day,
            seed=a.seed,
            workers=a.workers,
            overrides=list(a.overrides),
        )
    )


def _add_compare(sub: argparse._SubParsersAction) -> None:
    from recsearch.compare.config import CompareConfig
    from recsearch.dist.launch_cli import add_launch_arguments

    p = sub.add_parser(
        "compare",
        help="every search method and the baselines on the same data: one table, Pareto plots",
        description=(
            "Run each search method (default: every registered one) and each baseline (default: lr, "
            "deepfm, dlrm, dcn_v2) on the same shards, days and seeds, train every model with one "
            "recipe on the train days and score it on the held-out last day (the day before it is "
            "the searches' validation day). Without --data it first writes planted data (synth + "
            "preprocess) into OUT. Searches and trainings are jobs of the shared torchx pool. Writes "
            "OUT/report.md (AUC, logloss, NE, relative NE, FLOPs, params, embedding bytes, search "
            "and training wall time; the targets; stability over seeds), OUT/compare.json and "
            "OUT/pareto_flops.png, OUT/pareto_embedding.png. Rerunning resumes; a rerun may add "
            "methods, baselines or seeds."
        ),
        epilog=f"config keys (YAML file or key=value):\n{config_help(CompareConfig)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="runs/compare", help="where everything goes (default runs/compare)")
    p.add_argument("--data", default="", help="shard directory to compare on (default: planted data in OUT)")
    p.add_argument("--seeds", type=int, default=None, help="searches per method (the seeds key)")
    p.add_argument("--restart", action="store_true", help="delete OUT's earlier comparison and start over")
    add_config_arguments(p, "compare")
    add_launch_arguments(p, "jobs (each search and each training is one torchx job)")
    p.set_defaults(func=_run_compare)


def _run_compare(a: argparse.Namespace) -> None:
    from recsearch.compare.config import CompareConfig
    from recsearch.compare.run import compare
    from recsearch.dist.launch_cli import launch_options
    from recsearch.utils.config import load_config

    overrides = [*a.overrides, *([f"seeds={a.seeds}"] if a.seeds is not None else [])]
    config = load_config(CompareConfig, a.config, overrides, preset=a.preset, preset_kind="compare")
    record = compare(config, a.out, a.data, launch_options(a), restart=a.restart)
    if record.get("failed"):
        names = ", ".join(record["failed"])
        print(f"recsearch compare: {len(record['failed'])} job(s) failed ({names}); see {a.out}/report.md, "
              "then rerun to retry them", file=sys.stderr)  # fmt: skip
        raise SystemExit(1)


def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    model = p.add_mutually_exclusive_group(required=required)
    model.add_argument(
        "--model", help="a zoo model: lr, fm, wide_deep, deepfm, dlrm, dcn_v2, xdeepfm, autoint"
    )
    model.add_argument("--arch", help="an architecture JSON file (schema_version 1)")


def _spec(a: argparse.Namespace) -> dict:
    """The architecture spec named by --model or --arch."""
    from recsearch.models.arch import load_arch
    from recsearch.models.zoo import create_arch

    return create_arch(a.model) if a.model else load_arch(a.arch)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a zoo model or an architecture JSON",
        description=textwrap.fill(
            "Train on --train-days (in order, shuffled within a day; `epochs` passes, with early "
            "stopping on --val-day) and evaluate on --eval-day. Embeddings are TorchRec tables sharded "
            "by the planner under DistributedModelParallel (also on one process) with a fused "
            "in-backward optimizer; dense parameters use Adam. Writes RUN_DIR/metrics.json (auc, logloss, "
            "ne, flops, params, embedding_params, samples_per_s), arch.json, config.json, TensorBoard "
            "scalars and checkpoints. Run under torchrun for several processes. Rerunning the same "
            "command resumes a killed run.",
            95,
        ),
        epilog=f"config keys (YAML file or key=value):\n{config_help(TrainConfig)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_model_args(p)
    p.add_argument("--data", required=True, help="shard directory")
    p.add_argument(
        "--train-days", "--days", dest="train_days", required=True, help="days to train on, e.g. 0-3"
    )
    p.add_argument("--eval-day", type=int, required=True, help="held-out day for the final metrics")
    p.add_argument(
        "--val-day",
        type=int,
        default=None,
        help="validation day for early stopping when epochs > 1 (not a train or eval day)",
    )
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--restart", action="store_true", help="delete an earlier run in --out and start over")
    add_config_arguments(p, "train")
    p.set_defaults(func=_run_train)


def _run_train(a: argparse.Namespace) -> None:
    from recsearch.data.criteo import parse_days
    from recsearch.train.trainer import train
    from recsearch.utils.config import load_config

    config = load_config(TrainConfig, a.config, a.overrides, preset=a.preset, preset_kind="train")
    spec = _spec(a)
    r = train(
        spec,
        a.data,
        parse_days(a.train_days),
        a.eval_day,
        a.out,
        config,
        val_day=a.val_day,
        restart=a.restart,
    )
    if _is_main():
        print(
            f"{r['model']}: auc {r['auc']:.5f}  logloss {r['logloss']:.5f}  ne {r['ne']:.5f}  "
            f"flops/example {r['flops']:,.0f}  params {r['params']:,}  "
            f"{r['samples_per_s'] or 0:,.0f} samples/s  -> {a.out}/metrics.json"
        )


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained run on a shard day",
        description=("AUC, logloss and NE of a trained run's model on one day of a shard directory."),
    )
    p.add_argument("--run", required=True, help="run directory written by recsearch train")
    p.add_argument("--data", required=True, help="shard directory")
    p.add_argument("--day", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=16384)
    p.add_argument("--out", default=None, help="JSON file for the result (default: RUN/eval_day_D.json)")
    p.set_defaults(func=_run_eval)


def _run_eval(a: argparse.Namespace) -> None:
    from recsearch.train.evaluate import evaluate_run
    from recsearch.utils.fileio import check_out_file, write_json

    check_out_file(a.out or f"{a.run}/eval_day_{a.day}.json")
    r = evaluate_run(a.run, a.data, a.day, a.batch_size)
    write_json(a.out or f"{a.run}/eval_day_{a.day}.json", r)
    print(
        f"day {a.day}: auc {r['auc']:.5f}  logloss {r['logloss']:.5f}  ne {r['ne']:.5f}  ({r['rows']:,} rows)"
    )


def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile",
        help="FLOPs, parameters and latency of a model",
        description=(
            "Forward FLOPs per example (torch.utils.flop_counter; embedding lookups count as 0 there, so "
            "lookup bytes per example are reported separately), dense and embedding parameter counts, and "
            "median forward latency at each batch size, on batches of a shard directory. With "
            "--fit-latency: profile each module of the interaction graphs of the zoo models (or the "
            "given model) on this machine, fit the per-op latency model that cost-aware searches take "
            "with cost_metric=latency latency_model=FILE, and write it to FILE."
        ),
    )
    _add_model_args(p, required=False)
    p.add_argument("--data", required=True, help="shard directory (table sizes and sample batches)")
    p.add_argument("--day", type=int, default=None, help="day to take batches from (default: the first)")
    p.add_argument("--batch-sizes", default="1,64,512")
    p.add_argument("--out", default=None, help="also write the result as JSON here")
    p.add_argument(
        "--fit-latency",
        metavar="FILE",
        default=None,
        help="fit the per-op latency model on this machine and write it to FILE (the zoo models at "
        "embedding widths 8, 16 and 32 unless --model/--arch names one model; batch 512)",
    )
    p.set_defaults(func=_run_profile)


def _run_fit_latency(a: argparse.Namespace) -> None:
    from recsearch.data.shards import ShardInfo
    from recsearch.profile.latency_model import fit_latency_model, zoo_specs
    from recsearch.utils.fileio import check_out_file, write_json

    check_out_file(a.fit_latency)
    info = ShardInfo.load(a.data)
    num_dense, num_fields = len(info.dense_names), len(info.sparse_names + info.jagged_names)
    if a.model or a.arch:
        spec = _spec(a)
        specs, shapes = [spec], [(num_dense, num_fields, int(spec["embedding"]["dim"]))]
    else:
        specs, shapes = zoo_specs(num_dense, num_fields)
    model = fit_latency_model(specs, shapes)
    write_json(a.fit_latency, model.to_dict())
    print(
        f"latency model of {len(specs)} interaction graphs at batch {model.batch}, {model.threads} threads:"
    )
    for kind, (c, b) in model.kinds.items():
        print(f"  {kind:<16} {c:8.4f} ms + {b:8.4f} ms per MFLOP/example")
    print(
        f"  glue {model.glue_ms:.4f} ms; on the profiled graphs, mean |predicted - measured| / measured "
        f"{model.fit['mean_abs_rel_error']:.1%}"
    )
    pairs = list(zip(specs, shapes, model.graph_ms, strict=True))
    for spec, shape, (predicted, measured) in pairs[:: max(1, len(specs) // 8)]:
        name = f"{spec.get('name', 'model')} (emb {shape[2]})"
        print(f"  {name:<18} predicted {predicted:7.3f} ms, measured {measured:7.3f} ms")
    print(f"wrote {a.fit_latency}; use it with cost_metric=latency latency_model={a.fit_latency}")


def _run_profile(a: argparse.Namespace) -> None:
    from recsearch.profile.latency import profile_model
    from recsearch.utils.fileio import check_out_file, write_json

    if a.fit_latency:
        _run_fit_latency(a)
        return
    if not (a.model or a.arch):
        raise ValueError("profile: give --model or --arch (or --fit-latency FILE to fit the latency model)")
    if a.out:
        check_out_file(a.out)
    spec = _spec(a)
    try:
        sizes = tuple(int(x) for x in a.batch_sizes.split(","))
    except ValueError:
        raise ValueError(
            f"--batch-sizes {a.batch_sizes!r}: give positive integers such as 1,64,512"
        ) from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--batch-sizes {a.batch_sizes!r}: give positive integers such as 1,64,512")
    r = profile_model(spec, a.data, a.day, sizes)
    print(
        f"{r['model']}: {r['flops']:,.0f} FLOPs/example (lookups excluded), {r['lookup_bytes']:,.0f} lookup "
        f"bytes/example, params {r['params']:,} ({r['embedding_params']:,} embedding, "
        f"{r['dense_params']:,} dense; tables {r['embedding_bytes'] / 2**20:,.1f} MiB)"
    )
    for bs, ms in r["latency_ms"].items():
        print(
            f"  batch {bs:>5}: {ms:8.3f} ms  ({float(bs) / ms * 1e3:,.0f} examples/s, {r['threads']} threads)"
        )
    if a.out:
        write_json(a.out, r)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run for serving",
        description=(
            "Write the run's trained model with a plain-tensor forward(dense, values, lengths) -> "
            "click probabilities: dense = raw integer counts B x D (the model applies the shards' "
            "log1p transform), values = ids of all sparse features feature-major, lengths = ids per "
            "(feature, example) feature-major. TorchScript loads with torch + fbgemm_gpu only; "
            "--format export writes a torch.export program (.pt2) with a dynamic batch dimension. "
            "With --raw-features DATA the file scores raw Criteo lines instead: forward(dense, "
            "categorical) with dense = the 13 raw integer counts (NaN if empty), categorical = "
            "int64 B x 26 values of the 8-digit hex strings (-1 if empty); it carries DATA's "
            "vocabularies and maps values to ids exactly as preprocess did (tools/score.py "
            "reads TSV lines with it)."
        ),
    )
    p.add_argument("--run", required=True, help="run directory written by recsearch train")
    p.add_argument("--out", required=True, help="output file (.pt for torchscript, .pt2 for export)")
    p.add_argument("--format", choices=["torchscript", "export"], default="torchscript")
    p.add_argument(
        "--raw-features",
        metavar="DATA",
        help="the preprocessed Criteo shards the run trained on: bake their vocabularies in, so the "
        "file takes raw values (no id lookup left to the serving stack)",
    )
    p.set_defaults(func=_run_export)


def _run_export(a: argparse.Namespace) -> None:
    from recsearch.export.serving import export_run

    spec = export_run(a.run, a.out, a.format, a.raw_features)
    inputs = "raw Criteo features" if a.raw_features else "ids"
    print(
        f"exported {a.run} ({spec.get('name')}, {len(spec['tables'])} tables) as {a.format} "
        f"over {inputs} to {a.out}"
    )


def _is_main() -> bool:
    import torch.distributed as dist

    return not dist.is_initialized() or dist.get_rank() == 0


_STAGES: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_synth,
    _add_preprocess,
    _add_convert,
    _add_inspect,
    _add_train,
    _add_eval,
    _add_profile,
    _add_export,
    add_search,
    add_method_stages,
    _add_quickstart,
    _add_compare,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsearch", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="stage", metavar="<stage>")
    for add in _STAGES:
        add(sub)
    # the stage list is read off the registered subcommands, methods' stages included
    rows = [f"  {c.dest:<11} {c.help}" for c in sub._choices_actions]
    sub.help = argparse.SUPPRESS  # listed once, in the description
    parser.description = (
        f"{_DESCRIPTION}\n\nStages (run `recsearch <stage> --help` for each):\n"
        + "\n".join(rows)
        + f"\n\n{_VOCABULARY}"
    )
    return parser


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.stage is None:
        parser.print_help()
        return 2
    try:
        args.func(args)
    except ValueError as e:  # user errors (RawFormatError, ArchError and config errors are ValueErrors)
        print(f"recsearch {args.stage}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:  # a path that is missing, unreadable, full, ...: say which, no traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"recsearch {args.stage}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"recsearch {args.stage}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
