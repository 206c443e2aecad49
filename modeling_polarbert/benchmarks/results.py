"""What a benchmark measured: one row per variant, the markdown table, and the running list of rows."""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Result:
    what: str
    batching: str
    attention: str
    compiled: bool
    model: str = ""
    events_per_second: float = float("nan")
    ms_per_step: float = float("nan")
    peak_memory_mb: float = float("nan")
    mfu: float = float("nan")
    busy_share: float = float("nan")
    note: str = ""

    def row(self) -> str:
        def number(value, fmt):
            return "-" if value is None or math.isnan(value) else format(value, fmt)

        return (f"| {self.what} | {self.model} | {self.batching} | {self.attention} | "
                f"{'on' if self.compiled else 'off'} | {number(self.events_per_second, ',.0f')} | "
                f"{number(self.ms_per_step, '.1f')} | {number(self.peak_memory_mb, ',.0f')} | "
                f"{number(self.mfu, '.1%')} | {number(self.busy_share, '.0%')} | {self.note} |")


HEADER = ("| measured | model | batching | attention | compile | events/s | ms/step | peak memory (MB) | MFU | "
          "GPU busy | note |\n|---|---|---|---|---|---|---|---|---|---|---|")


class Results(list):
    """The results so far; each one added is printed and, with `--json`, the file rewritten at once, so that a run
    stopped at its time limit still leaves what it measured."""

    def __init__(self, args, header: str):
        super().__init__()
        self.args, self.header = args, header

    def append(self, result: Result) -> None:
        super().append(result)
        print(result.row(), flush=True)
        if self.args.json:
            Path(self.args.json).write_text(json.dumps(
                {"header": self.header, "argv": self.args.argv, "results": [asdict(r) for r in self]}, indent=1))

    def extend(self, results) -> None:
        for result in results:
            self.append(result)
