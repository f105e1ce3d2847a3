"""README.md from nbs/index.ipynb (`make readme`; tests/test_notebooks.py checks README.md is its output).

nbconvert's markdown of the notebook as committed (nothing is executed), with the inputs of cells tagged `remove-input`
left out (the cells that generate tables from the code and the committed runs: the reader sees their output) and code
blocks marked as Python (the notebook is stored in nbdev_clean's form, which keeps no `language_info`)."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def readme(index: Path = REPO / 'nbs' / 'index.ipynb') -> tuple[str, dict]:
    "README.md's text and the files of its inline images ({name: bytes})."
    import nbformat
    from nbconvert import MarkdownExporter
    from traitlets.config import Config
    nb = nbformat.read(index, as_version=4)
    nb.metadata['language_info'] = {'name': 'python'}
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove-input'}
    body, resources = MarkdownExporter(config=c).from_notebook_node(nb, resources={'output_files_dir': 'README_files'})
    return body, resources.get('outputs', {})


def main(out: Path = REPO / 'README.md'):
    body, files = readme()
    out.write_text(body)
    for name, data in files.items(): (out.parent / name).parent.mkdir(parents=True, exist_ok=True); (out.parent / name).write_bytes(data)


if __name__ == '__main__': main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / 'README.md')
