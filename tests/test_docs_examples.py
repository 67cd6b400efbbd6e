"""Every code example in README.md and the documentation runs as written (issue 13).

Which blocks are examples
    README.md: fenced blocks marked ```python (or ``py``, ``pycon``).
    docs/index.rst and docs/guide/*.rst: ``.. code-block::`` (``code``,
    ``sourcecode``) in Python or with no language, and literal blocks
    introduced by ``::``, which Sphinx highlights as Python (``.. highlight::``
    changes that for the rest of a page). Blocks in other languages (bash,
    text, ...) are not run; ``literalinclude`` shows a file that is run
    elsewhere (docs/index.rst shows the README's quickstart).

How a block that cannot run here is excused
    A marker with a reason right before it (blank lines may come between):
    ``.. skip-example: <reason>`` in reStructuredText (a comment, invisible
    on the page) or ``<!-- skip-example: <reason> -->`` in Markdown. A Python
    block with no marker must run; a marker that is not followed by a Python
    block fails the test, so a marker cannot outlive its block.

How a page runs
    A page is one program: its blocks run in order, in a fresh Python process,
    in a temporary directory.

    * A page with a complete script (a block with a top-level
      ``if __name__ == "__main__":``) runs as a file, ``python example.py``,
      the way a reader runs it, where ``LocalCluster``'s worker processes
      import the file again: the blocks after the script go at the end of
      its ``if`` block, as the pages tell readers to do.
    * Any other page runs as a notebook session: its blocks run in one fresh
      ``__main__`` namespace, in a process started with ``-c`` (there is no
      script for worker processes to import again). Blocks that start with
      ``>>>`` run as doctests in that namespace, so their output is checked.
"""

from __future__ import annotations

import ast
import doctest
import json
import re
import subprocess
import sys
import textwrap
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "README.md").exists():  # the tests copied away from the source tree (nox -s wheel)
    pytest.skip("the README and docs are not next to the tests", allow_module_level=True)
PAGES = [ROOT / "README.md", ROOT / "docs" / "index.rst", *sorted((ROOT / "docs" / "guide").glob("*.rst"))]
PYTHON = {"python", "python3", "py", "pycon", "ipython", "ipython3"}
PAGE_TIMEOUT = 150


@dataclass
class Block:
    """One code example: where it is, its code, and why it is not run (if it is not)."""

    page: str
    line: int  # 1-based line of the first line of code
    code: str
    skip: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        return self.code.lstrip().startswith(">>>")

    @property
    def is_script(self) -> bool:
        """A complete script: has a top-level ``if __name__ == "__main__":``."""
        try:
            body = [] if self.is_doctest else ast.parse(self.code).body
        except SyntaxError:
            return False  # not Python: running its page says so
        return any(
            isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test)
            for node in body
        )


class MarkerError(ValueError):
    """A skip-example marker that excuses no Python block."""


# ------------------------------------------------------------------ extraction
RST_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
RST_HIGHLIGHT = re.compile(r"^\s*\.\. highlight::\s*(\S+)")
RST_ANY_DIRECTIVE = re.compile(r"^\s*\.\. [\w:-]+::")
RST_MARKER = re.compile(r"^\s*\.\. skip-example:(.*)$")
MD_FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
MD_MARKER = re.compile(r"^\s*<!--\s*skip-example:(.*?)-->\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indented_body(lines: list[str], start: int, parent_indent: int) -> tuple[int, list[str]]:
    """Lines from ``start`` on that are blank or indented deeper than ``parent_indent``: (first line, lines)."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > parent_indent):
        end += 1
    body = lines[start:end]
    while body and not body[-1].strip():
        body.pop()
    skip = 0
    while skip < len(body) and not body[skip].strip():
        skip += 1
    return start + skip, body[skip:]


def rst_blocks(text: str, page: str) -> list[Block]:
    """The Python code blocks of a reStructuredText page, with their skip markers."""
    lines = text.splitlines()
    found: list[tuple[int, Block]] = []  # (index of the line where the block starts on the page, block)
    default = "python"
    i = 0
    while i < len(lines):
        line = lines[i]
        if match := RST_HIGHLIGHT.match(line):
            default = match[1]
        if match := RST_DIRECTIVE.match(line):
            language = match[2] or default
            j = i + 1
            while j < len(lines) and lines[j].strip().startswith(":") and _indent(lines[j]) > len(match[1]):
                j += 1  # the directive's options
            first, body = _indented_body(lines, j, len(match[1]))
            if language in PYTHON:
                found.append((i, Block(page, first + 1, textwrap.dedent("\n".join(body)))))
            i = max(first + len(body), i + 1)
            continue
        if line.rstrip().endswith("::") and not RST_ANY_DIRECTIVE.match(line) and not line.strip().startswith(".."):
            start = i  # the paragraph that introduces the literal block
            while start > 0 and lines[start - 1].strip() and _indent(lines[start - 1]) == _indent(line):
                start -= 1
            first, body = _indented_body(lines, i + 1, _indent(line))
            if body and default in PYTHON:
                found.append((start, Block(page, first + 1, textwrap.dedent("\n".join(body)))))
            i = max(first + len(body), i + 1)
            continue
        i += 1
    _attach_markers(lines, found, RST_MARKER, page)
    return [block for _, block in found]


def markdown_blocks(text: str, page: str) -> list[Block]:
    """The Python fenced code blocks of a Markdown page, with their skip markers."""
    lines = text.splitlines()
    found: list[tuple[int, Block]] = []
    i = 0
    while i < len(lines):
        match = MD_FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, language = match[2], match[3].lower()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if language in PYTHON:
            found.append((i, Block(page, i + 2, textwrap.dedent("\n".join(lines[i + 1 : j])))))
        i = j + 1
    _attach_markers(lines, found, MD_MARKER, page)
    return [block for _, block in found]


def _attach_markers(lines: list[str], found: list[tuple[int, Block]], marker: re.Pattern, page: str) -> None:
    starts = {start: block for start, block in found}
    for index, line in enumerate(lines):
        match = marker.match(line)
        if not match:
            continue
        reason = match[1].strip()
        if not reason:
            raise MarkerError(f"{page}:{index + 1}: skip-example needs a reason")
        following = next((k for k in range(index + 1, len(lines)) if lines[k].strip()), None)
        if following not in starts:
            raise MarkerError(f"{page}:{index + 1}: skip-example is not followed by a Python code block")
        starts[following].skip = reason


def page_blocks(path: Path) -> list[Block]:
    page = str(path.relative_to(ROOT))
    text = path.read_text()
    return markdown_blocks(text, page) if path.suffix == ".md" else rst_blocks(text, page)


# --------------------------------------------------------------------- running
def run_page_here(blocks_file: str) -> None:
    """Run a page's blocks in order in one namespace (inside the page's own process)."""
    blocks = [Block(**b) for b in json.loads(Path(blocks_file).read_text())]
    # a fresh __main__ module, as a notebook kernel has: what a page defines is
    # importable as __main__.<name>, so pickle finds it
    main = types.ModuleType("__main__")
    sys.modules["__main__"] = main
    namespace = main.__dict__
    for block in blocks:
        print(f"--- running {block.where}", file=sys.stderr, flush=True)
        if block.is_doctest:
            test = doctest.DocTestParser().get_doctest(block.code, namespace, block.where, block.page, block.line - 1)
            runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            runner.run(test, clear_globs=False, out=sys.stderr.write)
            if runner.failures:
                raise SystemExit(f"doctest failures in {block.where}")
            namespace.update(test.globs)  # a DocTest works on a copy: later blocks see its names
        else:  # padded with blank lines, so that tracebacks show the page's line numbers
            exec(compile("\n" * (block.line - 1) + block.code, block.page, "exec"), namespace)
    print("--- page done", file=sys.stderr, flush=True)


def as_script(blocks: list[Block]) -> str | None:
    """The page as one file when it has a script: later blocks go at the end of its ``if`` block."""
    scripts = [i for i, block in enumerate(blocks) if block.is_script]
    if not scripts:
        return None
    first = scripts[0]
    script = blocks[first]
    guard = ast.parse(script.code).body[-1]
    if not (isinstance(guard, ast.If) and "__main__" in ast.unparse(guard.test)):
        raise AssertionError(f"{script.where}: the if __name__ == '__main__' block must come last in the script")
    indent = " " * guard.body[0].col_offset
    parts = []
    for i, block in enumerate(blocks):
        if block.is_doctest:
            raise AssertionError(f"{block.where}: a doctest block on a page that runs as a script")
        code = block.code if i <= first else textwrap.indent(block.code, indent)
        parts.append(f"{indent if i > first else ''}# --- {block.where}\n{code}\n")
    return "\n".join(parts)


def run(args: list[str], cwd: Path, what: str, shown: str = "") -> str | None:
    """Run ``args`` in ``cwd``; the failure message (its error output, then ``shown``), or None."""
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=PAGE_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return f"{what} did not finish in {PAGE_TIMEOUT} s:\n{(exc.stderr or b'')[-4000:]}{shown}"
    if done.returncode != 0:
        return f"{what} failed (exit {done.returncode}):\n{done.stderr[-6000:]}{shown}"
    return None


def run_page(page: str, tmp_path: Path) -> str | None:
    """Run ``page``'s examples in a fresh process in ``tmp_path``; the failure message, or None."""
    blocks = [b for b in page_blocks(ROOT / page) if b.skip is None]
    script = as_script(blocks)
    if script is not None:
        (tmp_path / "example.py").write_text(script)
        numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(script.splitlines(), start=1))
        shown = f"\n\nthe script:\n{numbered}"
        return run([sys.executable, "example.py"], tmp_path, f"the examples of {page}, run as a script", shown)
    blocks_file = tmp_path / "blocks.json"
    blocks_file.write_text(json.dumps([asdict(b) for b in blocks]))
    runner = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); "
        f"import test_docs_examples; test_docs_examples.run_page_here({str(blocks_file)!r})"
    )
    return run([sys.executable, "-c", runner], tmp_path, f"the examples of {page}")


def pages_to_run() -> list[str]:
    return [str(path.relative_to(ROOT)) for path in PAGES if any(b.skip is None for b in page_blocks(path))]


@pytest.fixture(scope="module")
def page_runs(request, tmp_path_factory):
    """The selected pages started at once, two processes at a time (a page mostly waits on its imports
    and its cluster's start: two at a time nearly halve the module's time on 2 cores)."""
    selected = [
        item.callspec.params["page"] for item in request.session.items
        if getattr(item, "originalname", None) == "test_page_runs" and item.module is request.module
    ]
    pool = ThreadPoolExecutor(max_workers=2)
    futures = {page: pool.submit(run_page, page, tmp_path_factory.mktemp("page")) for page in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.timeout(len(pages_to_run()) * PAGE_TIMEOUT)
@pytest.mark.parametrize("page", pages_to_run())
def test_page_runs(page, page_runs):
    failure = page_runs[page].result()
    if failure is not None:
        pytest.fail(failure)


# ------------------------------------------------------- the extractor itself
def test_the_pages_have_examples_and_every_skipped_one_says_why():
    blocks = [block for path in PAGES for block in page_blocks(path)]
    assert {b.page for b in blocks} >= {"README.md", "docs/guide/quickstart.rst", "docs/guide/online.rst"}
    assert all(b.skip is None or len(b.skip) > 10 for b in blocks)
    for block in blocks:
        if not block.is_doctest:
            ast.parse(block.code)  # every block is Python, not a fragment


RST_SAMPLE = """\
Title
=====

A literal block::

   a = 1

.. code-block:: python
   :caption: with an option

   b = a + 1

.. code-block:: bash

   echo not python

.. skip-example: needs a cluster of yours

.. code-block:: python

   client = Client("tcp://scheduler:8786")

.. note::

   Inside a note::

      c = b * 2

.. code-block:: python

   >>> b
   2
"""


def test_rst_extraction():
    blocks = rst_blocks(RST_SAMPLE, "sample.rst")
    assert [(b.line, b.code, b.skip) for b in blocks] == [
        (6, "a = 1", None),
        (11, "b = a + 1", None),
        (21, 'client = Client("tcp://scheduler:8786")', "needs a cluster of yours"),
        (27, "c = b * 2", None),
        (31, ">>> b\n2", None),
    ]
    assert blocks[-1].is_doctest


def test_markdown_extraction():
    text = "x\n\n```python\na = 1\n```\n\n<!-- skip-example: needs your data -->\n```python\nb = data\n```\n\n```bash\nls\n```\n"
    assert [(b.line, b.code, b.skip) for b in markdown_blocks(text, "x.md")] == [
        (4, "a = 1", None),
        (9, "b = data", "needs your data"),
    ]


@pytest.mark.parametrize(
    "text, parse",
    [
        (".. skip-example: a reason long enough\n\n.. code-block:: bash\n\n   ls\n", rst_blocks),
        (".. skip-example:\n\n.. code-block:: python\n\n   a = 1\n", rst_blocks),
        ("<!-- skip-example: a reason long enough -->\n\nSome text.\n", markdown_blocks),
    ],
)
def test_a_marker_must_excuse_a_python_block(text, parse):
    with pytest.raises(MarkerError):
        parse(text, "page")


def test_script_detection():
    assert Block("p", 1, 'import x\nif __name__ == "__main__":\n    x.run()\n').is_script
    assert not Block("p", 1, "x = 1\n").is_script


def test_a_page_with_a_script_continues_inside_its_main_block():
    blocks = [
        Block("p", 1, "import os\n\nif __name__ == '__main__':\n    x = 1\n"),
        Block("p", 9, "y = x + 1\nprint(y)"),
    ]
    script = as_script(blocks)
    assert script == (
        "# --- p:1\nimport os\n\nif __name__ == '__main__':\n    x = 1\n\n\n"
        "    # --- p:9\n    y = x + 1\n    print(y)\n"
    )
    namespace = {"__name__": "__main__"}
    exec(script, namespace)
    assert namespace["y"] == 2
    assert as_script([Block("p", 1, "x = 1")]) is None


def test_a_failing_block_or_doctest_fails_its_page(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # run_page_here replaces it
    for code in ("undefined_name + 1", ">>> 1 + 1\n3"):
        blocks_file = tmp_path / "blocks.json"
        blocks_file.write_text(json.dumps([asdict(Block("p", 1, code))]))
        with pytest.raises((NameError, SystemExit)):
            run_page_here(str(blocks_file))
