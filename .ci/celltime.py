"""Where a notebook's test time goes: run it as `nbdev_test` does (the `tst_flags` cells and `eval: false` skipped, IN_TEST set),
from its folder, and print its slowest cells and the total.

    OMP_NUM_THREADS=1 python .ci/celltime.py nbs/09_cli.ipynb [N]   # the N slowest cells (default 12)

Not part of CI: a tool for keeping the suite under its time budget."""
import os, sys, time
from pathlib import Path
from execnb.shell import CaptureShell
from nbdev.config import get_config
from nbdev.process import NBProcessor

def cell_times(nb:Path) -> list[tuple[float, int, str]]:
    "(seconds, index, first line) of every cell nbdev_test runs, in order; stops at the first error, raising it."
    nb = nb.resolve(); os.chdir(nb.parent)
    skip = set(str(get_config().get('tst_flags', '')).split())
    sh = CaptureShell(); sh.run_cell("import os; os.environ['IN_TEST'] = '1'; IN_TEST = True")
    out = []
    for c in NBProcessor(nb).nb.cells:
        d = c.directives_
        if c.cell_type != 'code' or skip & d.keys() or str(d.get('eval:', [''])[0]).lower() == 'false': continue
        t = time.time(); sh.run_cell(c.source); dt = time.time() - t
        if sh.exc: raise RuntimeError(f"{nb.name} cell {c.idx_}: {sh.exc!r}")
        out.append((dt, c.idx_, (c.source.splitlines() or [''])[0][:90]))
    return out

if __name__ == '__main__':
    times = cell_times(Path(sys.argv[1]))
    for dt, i, first in sorted(times, reverse=True)[:int(sys.argv[2]) if len(sys.argv) > 2 else 12]: print(f"{dt:7.1f} s  cell {i}: {first}")
    print(f"total {sum(t for t, _, _ in times):.0f} s over {len(times)} cells")
