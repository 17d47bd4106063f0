"""Reading callgrind's counts for the benchmarks that count instructions (bench.overhead,
bench.instructions): the measured process calls getppid() before and after each phase, and
callgrind, run with --dump-before=getppid, writes a dump at each call."""

import re
from pathlib import Path

_SUMMARY = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def per_request(out: Path, phases: int, requests: int) -> list[float]:
    """Instructions per request of each phase, in order, from the dumps next to `out`."""
    # Dump k (from 1) holds what ran before the k-th getppid(): the even ones are counts.
    counts = []
    for k in range(2, 2 * phases + 1, 2):
        found = _SUMMARY.search(Path(f"{out}.{k}").read_bytes())
        assert found, f"no total in dump {k}"
        counts.append(int(found.group(1)) / requests)
    return counts
