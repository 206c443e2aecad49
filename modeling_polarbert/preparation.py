"""The Kaggle "IceCube - Neutrinos in Deep Ice" layout -> an Arrow-backed Hugging Face `datasets` dataset.

One row per event, every pulse kept with its exact value (down-sampling is the collator's job, so that every
epoch draws afresh). The schema (`output_schema`):

| column | type | note |
| --- | --- | --- |
| event_id | int64 | |
| batch_id | int32 | N of `batch_N.parquet` |
| sensor_id | list<int16> | DOM ids 0..5159 stay integers (the reference code's float16 lost ids above 2048) |
| time | list<int32> | ns; Kaggle times are integers of about 5,000-30,000 (checked to fit int32) |
| charge | list<float32> | p.e.; lossless for Kaggle charges, see below |
| auxiliary | list<bool> | |
| n_pulses | int32 | the length column for length-grouped batching |
| azimuth, zenith | float64 | where the meta file has them (required for the train split) |
| ... | as in the meta | every other meta column (a simulator's truth, say), with its own type |

Charges: Kaggle charges are multiples of 0.025 p.e. float32 keeps 24 significant bits, so distinct multiples of
0.025 stay distinct below about 200,000 p.e. (far above any pulse) and `round(charge32 / 0.025) * 0.025`
gives back the float64 value; the stored value is exactly `float32(original)`.

The pulses of an event keep their file order (the Kaggle files are time-ordered within an event).

All work is columnar (pyarrow/numpy on whole batch files): the list columns are built from the meta's pulse
ranges as offsets (`pa.ListArray.from_arrays`), never by a Python loop over events or pulses.

`prepare_kaggle` writes a dataset that `datasets.load_from_disk` reads (the `save_to_disk` layout). Each batch
file is converted (in parallel with `num_proc`) into its own Arrow file in `OUT_DIR.incomplete/`, written under a
temporary name and renamed when complete. Once all are there they become the dataset's shards (hard links, no
copy; one shard per batch file, memory-mapped when loaded, so nothing is held in RAM) in
`OUT_DIR.incomplete/dataset`, which is renamed to OUT_DIR in one step. An interrupted run leaves no OUT_DIR, and
running it again converts only the batches still missing. Bad input (`ValueError` / `FileNotFoundError`
naming the file, the column and the event id) removes everything the run wrote: there is nothing to resume
until the input is fixed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shutil
import sys
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from .geometry import NUM_DOMS
from .kaggle_layout import KaggleSplit, aside_files, inspect_kaggle, read_batch, written_aside

BASE_FIELDS = [
    pa.field("event_id", pa.int64()),
    pa.field("batch_id", pa.int32()),
    pa.field("sensor_id", pa.list_(pa.int16())),
    pa.field("time", pa.list_(pa.int32())),
    pa.field("charge", pa.list_(pa.float32())),
    pa.field("auxiliary", pa.list_(pa.bool_())),
    pa.field("n_pulses", pa.int32()),
]
WORK_FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------------------------------
# Batch selection ("1-50,655")
# ----------------------------------------------------------------------------------------------------------------


def parse_batch_selection(text: str) -> list[int]:
    """Parse a batch selection such as `"1-50,655"` into sorted, unique batch ids (ranges are inclusive)."""
    selected = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise ValueError(f"bad batch selection {text!r}: {part!r} is not N or N-M (e.g. 1-50,655)")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise ValueError(f"bad batch selection {text!r}: range {part!r} runs backwards")
        selected.update(range(low, high + 1))
    return sorted(selected)


# ----------------------------------------------------------------------------------------------------------------
# One batch file -> one Arrow table of events (read and checked by kaggle_layout, vectorised)
# ----------------------------------------------------------------------------------------------------------------


def output_schema(source: KaggleSplit) -> pa.Schema:
    """The rows' schema, with the `datasets` Features in its metadata (so `Dataset.from_file` reads them back
    exactly): the base fields, the labels as float64, every other meta column with its own type."""
    clashes = [n for n in source.extra_columns if n in {f.name for f in BASE_FIELDS}]
    if clashes:
        raise ValueError(f"{source.meta_path}: meta column {clashes[0]!r} clashes with an output column of the "
                         "same name")
    fields = BASE_FIELDS + [pa.field(n, pa.float64()) for n in source.direction_columns]
    fields += [source.meta_schema.field(n).remove_metadata() for n in source.extra_columns]
    return datasets.Features.from_arrow_schema(pa.schema(fields)).arrow_schema


def convert_batch(source: KaggleSplit, batch_id: int) -> pa.Table:
    """Convert one batch file and its meta rows into a table of events with `output_schema(source)`."""
    batch = read_batch(source, batch_id)
    pulses = batch.pulses
    list_offsets = pa.array(batch.offsets.astype(np.int32))
    arrays = {
        "event_id": pa.array(batch.event_ids, pa.int64()),
        "batch_id": pa.array(np.full(len(batch.event_ids), batch_id, dtype=np.int32)),
        # DOM ids and times were checked to fit; the charge cast is lossless for Kaggle charges (module docstring).
        "sensor_id": pa.ListArray.from_arrays(list_offsets, pulses["sensor_id"].cast(pa.int16())),
        "time": pa.ListArray.from_arrays(list_offsets, pulses["time"].cast(pa.int32())),
        "charge": pa.ListArray.from_arrays(list_offsets, pulses["charge"].cast(pa.float32(), safe=False)),
        "auxiliary": pa.ListArray.from_arrays(list_offsets, pulses["auxiliary"]),
        "n_pulses": pa.array(np.diff(batch.offsets).astype(np.int32)),
        **batch.labels,
        **{name: batch.meta.column(name).combine_chunks() for name in source.extra_columns},
    }
    schema = output_schema(source)
    return pa.Table.from_arrays([arrays[name] for name in schema.names], schema=schema)


# ----------------------------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------------------------


def load_kaggle(
    kaggle_dir: str | Path,
    split: str = "train",
    batches: list[int] | None = None,
    *,
    num_doms: int = NUM_DOMS,
    require_labels: bool | None = None,
) -> datasets.Dataset:
    """Convert a Kaggle-layout split into an in-memory `datasets.Dataset` without writing anything (for small
    selections: simulated sets, a few batches). Same rows and schema as `prepare_kaggle`."""
    source = inspect_kaggle(kaggle_dir, split, batches, num_doms=num_doms, require_labels=require_labels)
    output_schema(source)
    table = pa.concat_tables([convert_batch(source, batch_id) for batch_id in source.batch_ids])
    return datasets.Dataset(table, info=_dataset_info(source))


def prepare_kaggle(
    kaggle_dir: str | Path,
    out_dir: str | Path,
    split: str = "train",
    batches: list[int] | None = None,
    num_proc: int = 1,
    *,
    num_doms: int = NUM_DOMS,
    require_labels: bool | None = None,
    progress: bool = True,
) -> datasets.Dataset:
    """Convert a Kaggle-layout split into a dataset saved with `save_to_disk` in `out_dir`; return it loaded
    back (memory-mapped) with `datasets.load_from_disk`.

    Args:
        kaggle_dir: folder with `{split}_meta.parquet` and `{split}/batch_N.parquet`.
        out_dir: where the dataset goes; must not exist yet (it appears only once complete).
        split: `"train"` (labels required) or `"test"`.
        batches: batch ids to convert (see `parse_batch_selection`); all batches of the meta file by default.
        num_proc: batch files converted in parallel (one process each).
        num_doms: DOM ids must lie in `0..num_doms-1`.
        require_labels: defaults to `split == "train"`.
        progress: show a progress bar over batches.
    """
    if num_proc < 1:
        raise ValueError(f"num_proc must be at least 1, got {num_proc}")
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ValueError(f"{out_dir}: output directory already exists; remove it or choose another")
    source = inspect_kaggle(kaggle_dir, split, batches, num_doms=num_doms, require_labels=require_labels)
    output_schema(source)  # a meta column that clashes with an output column fails here, before any work
    work_dir = out_dir.parent / f"{out_dir.name}.incomplete"
    try:
        batches_dir = _start_or_resume(work_dir, source)
        _convert_missing_batches(source, batches_dir, num_proc, progress)
        _assemble(source, batches_dir, work_dir / "dataset", out_dir)
    except (ValueError, FileNotFoundError):
        # Bad input: nothing is worth resuming until it is fixed, so leave nothing behind.
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    except BaseException:
        # Interrupted or crashed: keep the completed batches so that a re-run converts only the rest.
        _remove_partial_files(work_dir)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    return datasets.load_from_disk(str(out_dir))


# ----------------------------------------------------------------------------------------------------------------
# prepare_kaggle's steps: work directory, parallel conversion, assembly
# ----------------------------------------------------------------------------------------------------------------


def _start_or_resume(work_dir: Path, source: KaggleSplit) -> Path:
    """Create the work directory, or reuse the one an interrupted run left if it converted the same input
    into the same schema; a stale one (other input, other schema) is discarded."""
    stamp = {
        "format": WORK_FORMAT_VERSION,
        "kaggle_dir": str(source.kaggle_dir.resolve()),
        "split": source.split,
        "num_doms": source.num_doms,
        "schema": output_schema(source).to_string(show_schema_metadata=False),
    }
    stamp_path = work_dir / "prepare.json"
    if work_dir.exists():
        try:
            reusable = json.loads(stamp_path.read_text()) == stamp
        except (OSError, ValueError):
            reusable = False
        if not reusable:
            shutil.rmtree(work_dir)
    _remove_partial_files(work_dir)
    batches_dir = work_dir / "batches"
    batches_dir.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return batches_dir


def _remove_partial_files(work_dir: Path) -> None:
    """Remove what an interrupted run was still writing: temporary batch files and a half-saved dataset."""
    for partial in aside_files(work_dir / "batches"):
        partial.unlink(missing_ok=True)
    shutil.rmtree(work_dir / "dataset", ignore_errors=True)


def _batch_arrow_path(batches_dir: Path, batch_id: int) -> Path:
    return batches_dir / f"batch_{batch_id}.arrow"


def _convert_and_write(job: tuple[KaggleSplit, int, Path]) -> int:
    """Convert one batch and write it as an Arrow stream file, renamed into place only once complete."""
    source, batch_id, batches_dir = job
    table = convert_batch(source, batch_id)
    final_path = _batch_arrow_path(batches_dir, batch_id)
    with written_aside(final_path) as partial, pa.OSFile(str(partial), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return batch_id


def _convert_missing_batches(source: KaggleSplit, batches_dir: Path, num_proc: int, progress: bool) -> None:
    todo = [b for b in source.batch_ids if not _batch_arrow_path(batches_dir, b).exists()]
    jobs = [(source, batch_id, batches_dir) for batch_id in todo]
    with tqdm(total=len(source.batch_ids), initial=len(source.batch_ids) - len(todo), unit="batch",
              desc=f"prepare {source.split}", disable=not progress) as bar:
        if num_proc == 1 or len(jobs) <= 1:
            for job in jobs:
                _convert_and_write(job)
                bar.update()
            return
        # fork on Linux (as `datasets.map(num_proc=...)` does; Arrow re-creates its thread pools in the child),
        # spawn elsewhere.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with context.Pool(min(num_proc, len(jobs))) as pool:
            for _ in pool.imap_unordered(_convert_and_write, jobs):
                bar.update()


def _assemble(source: KaggleSplit, batches_dir: Path, saving_dir: Path, out_dir: Path) -> None:
    """Lay the per-batch Arrow files out as a `save_to_disk` dataset and rename it into place.

    The batch files already are what `save_to_disk` would write (Arrow streams whose schema metadata holds the
    Features), so they are hard-linked as the shards instead of copied: no second copy of a 200 GB dataset, on
    disk or in time. The two JSON files are those `save_to_disk` writes and `load_from_disk` reads (a format
    `datasets` keeps loadable across versions, since saved datasets outlive them)."""
    saving_dir.mkdir(parents=True)
    n_shards = len(source.batch_ids)
    shard_names = [f"data-{index:05d}-of-{n_shards:05d}.arrow" for index in range(n_shards)]
    for batch_id, shard_name in zip(source.batch_ids, shard_names):
        _link_or_copy(_batch_arrow_path(batches_dir, batch_id), saving_dir / shard_name)
    _dataset_info(source).write_to_directory(str(saving_dir))
    fingerprint_of = json.dumps([output_schema(source).to_string(), source.split, list(source.batch_ids)])
    state = {
        "_data_files": [{"filename": name} for name in shard_names],
        "_fingerprint": hashlib.sha256(fingerprint_of.encode()).hexdigest()[:16],
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": source.split,
    }
    (saving_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(saving_dir, out_dir)  # one rename: OUT_DIR is either absent or complete


def combine_prepared(folders: list[str | Path], out_dir: str | Path) -> datasets.Dataset:
    """One dataset of the events of several prepared folders, in the order given, without copying them: their
    shard files are hard-linked as the shards of `out_dir` (a `save_to_disk` layout, as `prepare_kaggle` writes),
    which appears in one rename once complete. For sets simulated in parallel processes (each writing its own
    Kaggle directory; give them distinct `event_id_offset`s). The folders must share one schema, and event ids
    must stay unique across them."""
    folders, out_dir = [Path(folder) for folder in folders], Path(out_dir)
    if not folders:
        raise ValueError("combine_prepared: no folders given")
    if out_dir.exists():
        raise ValueError(f"{out_dir}: output directory already exists; remove it or choose another")
    loaded = [datasets.load_from_disk(str(folder)) for folder in folders]
    for folder, dataset in zip(folders[1:], loaded[1:]):
        if dataset.features != loaded[0].features:
            raise ValueError(f"{folder} has another schema than {folders[0]}: "
                             f"{dataset.features} vs {loaded[0].features}")
    event_ids = np.concatenate([dataset.data.column("event_id").to_numpy() for dataset in loaded])
    unique, counts = np.unique(event_ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"event id {unique[counts > 1][0]} occurs more than once across {[str(f) for f in folders]} "
                         "(simulate separate sets with distinct event_id_offset)")

    shards = [folder / entry["filename"] for folder in folders
              for entry in json.loads((folder / "state.json").read_text())["_data_files"]]
    saving_dir = out_dir.parent / f"{out_dir.name}.incomplete"
    shutil.rmtree(saving_dir, ignore_errors=True)
    try:
        saving_dir.mkdir(parents=True)
        shard_names = [f"data-{index:05d}-of-{len(shards):05d}.arrow" for index in range(len(shards))]
        for shard, shard_name in zip(shards, shard_names):
            _link_or_copy(shard, saving_dir / shard_name)
        info = loaded[0].info.copy()
        info.description = f"{len(folders)} prepared datasets combined: {', '.join(f.name for f in folders)}"
        info.write_to_directory(str(saving_dir))
        fingerprints = [json.loads((folder / "state.json").read_text())["_fingerprint"] for folder in folders]
        state = {
            "_data_files": [{"filename": name} for name in shard_names],
            "_fingerprint": hashlib.sha256(json.dumps(fingerprints).encode()).hexdigest()[:16],
            "_format_columns": None,
            "_format_kwargs": {},
            "_format_type": None,
            "_output_all_columns": False,
            "_split": json.loads((folders[0] / "state.json").read_text()).get("_split"),
        }
        (saving_dir / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(saving_dir, out_dir)
    except BaseException:
        shutil.rmtree(saving_dir, ignore_errors=True)
        raise
    return datasets.load_from_disk(str(out_dir))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def _dataset_info(source: KaggleSplit) -> datasets.DatasetInfo:
    return datasets.DatasetInfo(
        description=f"IceCube events in the Kaggle layout, split {source.split!r}, converted by polarbert prepare",
        features=datasets.Features.from_arrow_schema(output_schema(source)),
    )


__all__ = ["parse_batch_selection", "output_schema", "convert_batch", "load_kaggle", "prepare_kaggle",
           "combine_prepared"]
