"""Checks that `nbdev_test` cannot make: the docs build, the cells Colab's and JupyterLab's "Run all" meet, and the pip path.

    python .ci/checks.py docs        # nbdev's docs processing (proc_nbs) of every notebook; no slow/gpu work in it
    python .ci/checks.py cells       # static: gpu cells stand alone (their own imports) and check for a GPU
    python .ci/checks.py no-shared   # every notebook's non-slow, non-gpu cells, from a folder without ../shared
    python .ci/checks.py wheel       # build the wheel, install it in a fresh venv, run warp_train from an unrelated folder
    python .ci/checks.py gpu-script  # .ci/gpu without a GPU: its one-line stop, then its log, counts and report on a short run
    python .ci/checks.py kernel      # "Run all" in a real Jupyter kernel (nbclient + ipykernel), as JupyterLab runs it: the chapters of
                                     # KERNEL_CHAPTERS, slow and gpu cells skipped as nbdev_test skips them, no IN_TEST, the machine's
                                     # default torch threads (or OMP_NUM_THREADS when set); any error, or any warning printed by
                                     # warp_nb or tqdm (e.g. tqdm's "IProgress not found"), fails it
    python .ci/checks.py kernel-all  # the same for every chapter (not in CI: the suite's time again, once more)

Each prints one line per problem and exits 1 if there is any.
"""
from __future__ import annotations
import ast, builtins, importlib, json, os, re, shutil, subprocess, sys, tempfile, time, warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted((ROOT/'nbs').glob('*.ipynb'))
FLAGS = {'slow', 'gpu'}
warnings.filterwarnings('ignore', message='Found cells containing imports')

def cells(nb:Path) -> list:
    "The notebook's cells as nbdev sees them (with `directives_`)."
    from nbdev.process import NBProcessor
    return NBProcessor(nb).nb.cells

def docs_runs(cell) -> bool:
    "Would nbdev's docs processing execute this cell?"
    from nbdev.processors import _do_eval
    return bool(_do_eval(cell))

def check_docs() -> list[str]:
    "Run nbdev's docs processing on every notebook; report each failure and each flagged cell it would run."
    probs = [f"{nb.name} cell {c.idx_}: a `{'/'.join(FLAGS & c.directives_.keys())}` cell that docs processing would run "
             "(move its imports to the notebook's import cell, or guard a gpu cell with `gpu_present`)"
             for nb in NBS for c in cells(nb) if c.cell_type == 'code' and FLAGS & c.directives_.keys() and docs_runs(c)
             and not ('gpu' in c.directives_ and 'gpu_present(' in c.source)]
    if probs: return probs
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'HF_DATASETS_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    shutil.rmtree(ROOT/'_proc', ignore_errors=True)
    t0 = time.time()
    r = subprocess.run([sys.executable, '-c', "from nbdev.serve import proc_nbs; proc_nbs('nbs', force=True)"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    print(f"docs processing: {time.time() - t0:.0f} s")
    if r.returncode == 0:
        missing = [nb.name for nb in NBS if not (ROOT/'_proc'/'nbs'/nb.name).exists() and not (ROOT/'_proc'/nb.name).exists()]
        return [f"{n}: not processed" for n in missing]
    # proc_nbs stops at the first failure: process each notebook alone to name them all
    for nb in NBS:
        r1 = subprocess.run([sys.executable, '-c', "import sys; from nbdev.serve_drv import main; from nbdev.processors import FilterDefaults; "
                             "from pathlib import Path; main((Path(sys.argv[1]), Path(sys.argv[2]), FilterDefaults))",
                             str(nb), str(Path(tempfile.mkdtemp())/nb.name)], cwd=ROOT, env=env, capture_output=True, text=True)
        if r1.returncode: probs.append(f"{nb.name}: {_last_error(r1.stderr)}")
    return probs or [f"proc_nbs failed: {_last_error(r.stderr)}"]

def _last_error(err:str) -> str:
    lines = [l for l in err.strip().splitlines() if l.strip()]
    for i, l in enumerate(lines):
        if l.startswith('Exception: Error'): return ' '.join(lines[i:i + 2])
    return lines[-1] if lines else 'failed'

# --- names -------------------------------------------------------------------------------------------------------
def defined_names(tree:ast.AST) -> set[str]:
    "Names a cell binds at top level (assignments, defs, classes, imports; `import *` as the module's public names)."
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store): out.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == '*':
                    m = importlib.import_module(node.module)
                    out |= set(getattr(m, '__all__', [n for n in vars(m) if not n.startswith('_')]))
                else: out.add((a.asname or a.name).split('.')[0])
        elif isinstance(node, ast.arg): out.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name: out.add(node.name)
    return out

def used_names(tree:ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}

def parse(src:str):
    "The cell's source as Python, IPython magics and shell escapes dropped."
    lines = [l for l in src.splitlines() if not l.lstrip().startswith(('%', '!', '#|'))]
    return ast.parse('\n'.join(lines))

def check_cells() -> list[str]:
    "The gpu cells stand alone: each uses only names it defines or earlier gpu cells define (its own imports), and checks for a GPU."
    probs, known = [], set(dir(builtins)) | {'get_ipython', 'display'}
    for nb in NBS:
        defined = set()
        for c in cells(nb):
            if c.cell_type != 'code' or 'gpu' not in c.directives_: continue
            tree = parse(c.source)
            free = used_names(tree) - defined_names(tree) - defined - known
            if free: probs.append(f"{nb.name} cell {c.idx_}: gpu cell uses {', '.join(sorted(free))}, which no gpu cell imports or defines")
            if 'gpu_present(' not in c.source: probs.append(f"{nb.name} cell {c.idx_}: gpu cell does not check for a GPU (gpu_present)")
            defined |= defined_names(tree)
    return probs

# --- the Colab and pip paths ---------------------------------------------------------------------------------------
def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return r.returncode, (r.stdout + r.stderr)

def check_no_shared() -> list[str]:
    "nbdev_test on a copy of the repository in a folder with no `shared/data` beside it."
    tmp = Path(tempfile.mkdtemp(prefix='warp_nb_noshared_'))
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for f in files:
        if (ROOT/f).is_file(): (tmp/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, tmp/f)
    env = {k: v for k, v in os.environ.items() if k != 'WARP_NB_SHARED_DATA'}
    env.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='Agg')
    t0 = time.time()
    rc, out = _run(['nbdev_test', '--n_workers', '2'], cwd=tmp, env=env)
    print(f"notebooks without ../shared: {time.time() - t0:.0f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return [] if rc == 0 else [f"nbdev_test without ../shared failed:\n{out[-3000:]}"]

def check_wheel() -> list[str]:
    "Build the wheel, install it in a fresh venv, run warp_train (tiny, small settings) and import every module."
    tmp = Path(tempfile.mkdtemp(prefix='warp_nb_wheel_'))
    rc, out = _run([sys.executable, '-m', 'build', '--wheel', '--outdir', str(tmp/'dist'), str(ROOT)])
    if rc: return [f"wheel build failed:\n{out[-2000:]}"]
    wheel = next((tmp/'dist').glob('*.whl'))
    rc, out = _run([sys.executable, '-m', 'venv', str(tmp/'venv')])
    if rc: return [f"venv failed: {out[-500:]}"]
    py, bindir = tmp/'venv'/'bin'/'python', tmp/'venv'/'bin'
    t0 = time.time()
    torch_spec = os.environ.get('WARP_NB_TORCH_INSTALL', 'torch==2.13.0').split()   # e.g. add --index-url .../whl/cpu on GitHub
    rc, out = _run([str(py), '-m', 'pip', 'install', '-q', *torch_spec])
    if rc == 0: rc, out = _run([str(py), '-m', 'pip', 'install', '-q', str(wheel)])
    if rc: return [f"installing the wheel failed:\n{out[-2000:]}"]
    print(f"fresh venv with the wheel: {time.time() - t0:.0f} s")
    work = tmp/'elsewhere'; work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('WARP_NB_SHARED_DATA', 'PYTHONPATH')}
    env.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='Agg', WARP_NB_CACHE=str(tmp/'cache'),
               PATH=f"{bindir}:{os.environ['PATH']}")
    mods = sorted(p.stem for p in (ROOT/'warp_nb').glob('*.py') if not p.stem.startswith('__'))
    rc, out = _run([str(py), '-c', f"import importlib, warp_nb; [importlib.import_module('warp_nb.' + m) for m in {mods!r}]; "
                    "print(warp_nb.__file__)"], cwd=work, env=env)
    if rc: return [f"importing the installed modules failed:\n{out[-2000:]}"]
    if str(tmp/'venv') not in out: return [f"the modules came from {out.strip()}, not from the installed wheel"]
    t0 = time.time()
    rc, out = _run([str(bindir/'warp_train'), '--preset', 'tiny', '--out', 'runs/tiny', '--I', '1', '--T', '4', '--batch_size', '8',
                    '--eval_prompts', '16', '--quiet'], cwd=work, env=env)
    print(f"warp_train from the wheel (tiny, T=4, cold cache): {time.time() - t0:.0f} s")
    probs = [] if rc == 0 else [f"warp_train from the wheel failed (exit {rc}):\n{out[-2000:]}"]
    if not probs and not (work/'runs'/'tiny'/'final'/'config.json').exists(): probs = ["warp_train wrote no final/ policy"]
    shutil.rmtree(tmp, ignore_errors=True)
    return probs

def check_gpu_script() -> list[str]:
    "`.ci/gpu` on this CPU: it stops at once with one line; in its plumbing mode (no CUDA check, no install) a one-notebook run gives its log, `N passed, M failed` and a JSON report under $OUT."
    probs, env = [], {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'PYTHON': sys.executable}
    env.pop('OUT', None)
    t0 = time.time()
    rc, out = _run(['bash', str(ROOT/'.ci'/'gpu')], env=env)
    lines = out.strip().splitlines()
    if rc == 0 or len(lines) != 1 or 'CUDA' not in lines[0] or time.time() - t0 > 60:
        probs.append(f".ci/gpu without CUDA should stop at once (non-zero exit) with one line naming CUDA; got exit {rc} after {time.time() - t0:.0f} s:\n{out[-1500:]}")
    tmp = Path(tempfile.mkdtemp(prefix='warp_nb_gpu_script_'))
    rc, out = _run(['bash', str(ROOT/'.ci'/'gpu')], env={**env, 'WARP_NB_GPU_PLUMBING': '1', 'WARP_NB_GPU_PATH': 'nbs/index.ipynb', 'OUT': str(tmp)})
    last = out.strip().splitlines()[-1] if out.strip() else ''
    if rc or last != '1 passed, 0 failed': probs.append(f".ci/gpu on index.ipynb: exit {rc}, last line {last!r} (expected '1 passed, 0 failed'):\n{out[-1500:]}")
    rep = json.loads((tmp/'gpu_report.json').read_text()) if (tmp/'gpu_report.json').exists() else None
    if rep is None or (rep['passed'], rep['failed'], list(rep['notebook_seconds'])) != (1, 0, ['index.ipynb']):
        probs.append(f".ci/gpu wrote no report, or a wrong one, under $OUT: {rep}")
    if 'Starting ' not in ((tmp/'gpu_suite.log').read_text() if (tmp/'gpu_suite.log').exists() else ''): probs.append(".ci/gpu wrote no suite log under $OUT")
    print(f"gpu script: {time.time() - t0:.0f} s")
    shutil.rmtree(tmp, ignore_errors=True)
    return probs

# --- "Run all" in a real kernel -------------------------------------------------------------------------------------
# the chapters that finish in under ~30 s under nbdev_test, and one that trains (REINFORCE on the tiny world)
KERNEL_CHAPTERS = ('00_core', '01_data', '03_reward', '05_merge', '05c_rundir', '07a_plots', 'index', '04_reinforce')
WARNING_LINE = re.compile(r'^(?P<path>\S+):\d+: (?P<cat>\w*Warning): (?P<msg>.*)$')

def kernel_notebook(nb_path:Path):
    "The notebook as JupyterLab would run it, with the cells nbdev_test skips (slow, gpu, `eval: false`, `nbdev_export()`) emptied."
    import nbformat
    nb = nbformat.read(nb_path, as_version=4)
    for c, pc in zip(nb.cells, cells(nb_path)):
        if c.cell_type != 'code': continue
        d = getattr(pc, 'directives_', {}) or {}
        if FLAGS & d.keys() or d.get('eval:', [''])[0].lower() == 'false' or 'nbdev_export(' in c.source: c.source = ''
    return nb

def printed_warnings(nb) -> list[str]:
    "The warnings on the notebook's stderr outputs that come from warp_nb or tqdm, one line each."
    out = []
    for c in nb.cells:
        for o in c.get('outputs', []):
            if o.get('output_type') != 'stream' or o.get('name') != 'stderr': continue
            for l in o.get('text', '').splitlines():
                m = WARNING_LINE.match(l.strip())
                if m and ('warp_nb' in m['path'] or 'tqdm' in m['path'] or m['cat'].startswith('Tqdm')): out.append(l.strip())
    return out

def check_kernel(chapters=KERNEL_CHAPTERS) -> list[str]:
    "Execute `chapters` through nbclient and ipykernel (JupyterLab's Run all); report each error and each warp_nb or tqdm warning."
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    os.environ.pop('IN_TEST', None)                                        # the kernel inherits this environment: a user's, not nbdev_test's
    os.environ.update(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', MPLBACKEND='module://matplotlib_inline.backend_inline')
    probs, t_all = [], time.time()
    print(f"kernel: {', '.join(chapters)}; torch threads: {os.environ.get('OMP_NUM_THREADS', 'the default')}")
    for name in chapters:
        path = ROOT/'nbs'/f'{name}.ipynb'
        nb, t0 = kernel_notebook(path), time.time()
        try: NotebookClient(nb, timeout=900, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
        except CellExecutionError as e:
            probs.append(f"{path.name}: {' '.join(str(e).split())[-400:]}")
        except Exception as e: probs.append(f"{path.name}: the kernel failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
        probs += [f"{path.name}: {w}" for w in printed_warnings(nb)]
        print(f"  {path.name}: {time.time() - t0:.0f} s")
    print(f"kernel: {len(chapters)} chapters in {time.time() - t_all:.0f} s")
    return probs

CHECKS = {'docs': check_docs, 'cells': check_cells, 'no-shared': check_no_shared, 'wheel': check_wheel, 'gpu-script': check_gpu_script,
          'kernel': check_kernel, 'kernel-all': lambda: check_kernel(tuple(nb.stem for nb in NBS))}

if __name__ == '__main__':
    names = sys.argv[1:] or list(CHECKS)
    bad = 0
    for n in names:
        probs = CHECKS[n]()
        for p in probs: print(f"{n}: {p}")
        print(f"check {n}: {'FAILED' if probs else 'passed'}")
        bad += bool(probs)
    sys.exit(1 if bad else 0)
