"""Render nbs/index.ipynb to README.md (nbdev_readme needs Quarto, which is not installable offline).

    python .ci/readme.py          # write README.md
    python .ci/readme.py --check  # exit 1 if README.md differs from the notebook
"""
import json, re, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r'^\s*#\|\s*(.*)$')

def cell_text(cell) -> str:
    src = ''.join(cell['source'])
    if cell['cell_type'] == 'markdown': return src.strip()
    lines = src.splitlines()
    flags = ' '.join(m.group(1) for l in lines if (m := DIRECTIVE.match(l)))
    if 'hide' in flags or 'echo: false' in flags: return ''
    code = '\n'.join(l for l in lines if not DIRECTIVE.match(l)).strip()
    if not code: return ''
    out = f'```python\n{code}\n```'
    for o in cell.get('outputs', []):          # printed text in a code block; Markdown (IPython's `Markdown`) as it is
        md, text = ''.join(o.get('data', {}).get('text/markdown', '')), ''.join(o.get('text', '')) or ''.join(o.get('data', {}).get('text/plain', ''))
        if md.strip(): out += '\n\n' + md.strip()
        elif text.strip(): out += '\n\n```\n' + text.rstrip() + '\n```'
    return out

IMAGE = re.compile(r'(!\[[^\]]*\]\()(?!https?://|/)([^)]+\))')

def render() -> str:
    nb = json.loads((root/'nbs'/'index.ipynb').read_text())
    parts = [IMAGE.sub(r'\1nbs/\2', t) for t in map(cell_text, nb['cells']) if t]   # images: relative to nbs/ in the notebook
    return '<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        if (root/'README.md').read_text() != text:
            print('README.md differs from nbs/index.ipynb: run python .ci/readme.py'); sys.exit(1)
    else: (root/'README.md').write_text(text)
