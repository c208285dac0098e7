"""The documentation: its examples run, its commands parse, its API reference is complete.

* Every fenced ``python`` block of ``docs/*.md`` and ``README.md`` runs; the blocks of one page
  run in order in one namespace, in a temporary working folder. An expression followed by a
  comment that is itself a Python expression (``sorted(losses)  # ['d', ...]``, on the same line
  or the next) must equal it; ``...`` in an expected list stands for any items. A ``print(...)``
  followed by a comment must print that text.
* Every ``colorkit ...`` line of a shell block is parsed by the real argument parser, the
  arguments after ``torchrun ... -m colorkit`` too; ``pip install`` and ``pytest`` lines must
  name paths and extras that exist.
* Every public module, function and class has a docstring with ``Args:`` naming each parameter,
  ``Returns:`` when it returns something, and ``Raises:`` naming what its own body raises.
* ``mkdocs build --strict`` succeeds and renders every public name of every documented module.
"""

from __future__ import annotations

import ast
import contextlib
import doctest
import importlib
import inspect
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import colorkit

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = [*sorted(DOCS.glob("*.md")), README]

#: The modules of the API reference (docs/reference/*.md), which must stay complete.
PUBLIC_MODULES = (
    "colorkit",
    "colorkit.registry",
    "colorkit.hookspecs",
    "colorkit.contracts",
    "colorkit.recipe",
    "colorkit.compose",
    "colorkit.engine",
    "colorkit.color",
    "colorkit.components.generators",
    "colorkit.components.discriminators",
    "colorkit.components.refiners",
    "colorkit.components.losses",
    "colorkit.components.stabilizers",
    "colorkit.fast",
    "colorkit.optim",
    "colorkit.data",
    "colorkit.imaging",
    "colorkit.checkpoint",
    "colorkit.weights",
    "colorkit.files",
    "colorkit.trainer",
    "colorkit.plots",
    "colorkit.demo",
    "colorkit.colorizing",
    "colorkit.video",
    "colorkit.metrics",
    "colorkit.cli",
    "colorkit.web",
    "colorkit.onnx_export",
)

SHELL_LANGUAGES = {"bash", "console", "sh", "shell", "shell-session", "zsh"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_SNIPPET = re.compile(r"""^\s*--8<--\s+["']([^"']+)["']\s*$""")


# -- collecting fenced blocks ---------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # line number of the first code line in the page
    language: str
    code: str

    @property
    def where(self) -> str:
        return f"{_shown(self.page)}:{self.line}"


def _shown(page: Path) -> str:
    """A page's path as error messages show it."""
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else page.name


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, with snippet includes expanded."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        language = (opening.group("info").strip().split() or [""])[0].lstrip(".").lower()
        body: list[str] = []
        index += 1
        start = index + 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence) and lines[index].strip().strip(fence[0]) == ""
        ):
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        index += 1
        blocks.append(Block(page, start, language, _expand_snippets("\n".join(body))))
    return blocks


def _expand_snippets(code: str) -> str:
    """Replace pymdownx.snippets lines (``--8<-- "path"``) with the file, as mkdocs does."""
    out = []
    for line in code.splitlines():
        match = _SNIPPET.match(line)
        out.append((REPO / match.group(1)).read_text(encoding="utf-8") if match else line)
    return "\n".join(out)


def blocks_of(languages: set[str]) -> list[Block]:
    return [b for page in PAGES for b in fenced_blocks(page) if b.language in languages]


def test_fenced_block_parser_finds_languages_lines_and_snippets(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n1. step\n\n    ```console\n    colorkit list\n    ```\n"
        '\n```toml\n--8<-- "pyproject.toml"\n```\n'
    )
    found = fenced_blocks(page)
    assert [(b.language, b.line) for b in found] == [("python", 4), ("console", 10), ("toml", 14)]
    assert found[1].code == "colorkit list"
    assert found[2].code.startswith("[build-system]")


# -- running Python examples ----------------------------------------------------------------
def _expected(comment: str, namespace: dict[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` if a comment is a Python expression, else ``(False, None)``."""
    try:
        return True, eval(comment, namespace)
    except Exception:
        return False, None


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list) and any(item is Ellipsis for item in expected):
        # [..., 'conv', ...]: the named items appear in this order, with anything around them
        wanted = [item for item in expected if item is not Ellipsis]
        items = iter(list(actual))
        return all(any(item == want for item in items) for want in wanted)
    return bool(actual == expected)


def _trailing_comment(source_lines: list[str], node: ast.stmt) -> str | None:
    """The comment after an expression statement, on its last line or alone on the next."""
    end_line = source_lines[node.end_lineno - 1]
    rest = end_line[node.end_col_offset :].strip()
    if rest.startswith("#"):
        return rest[1:].strip()
    if node.end_lineno < len(source_lines):
        following = source_lines[node.end_lineno].strip()
        if following.startswith("#"):
            return following[1:].strip()
    return None


def run_python_block(block: Block, namespace: dict[str, Any]) -> None:
    """Run a block statement by statement, checking commented results."""
    source_lines = block.code.splitlines()
    filename = _shown(block.page)
    for node in ast.parse(block.code, filename=filename).body:
        comment = _trailing_comment(source_lines, node) if isinstance(node, ast.Expr) else None
        ast.increment_lineno(node, block.line - 1)  # tracebacks name the page's own lines
        where = f"{filename}:{node.lineno}"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            if isinstance(node, ast.Expr):
                code = compile(ast.Expression(node.value), filename, "eval")
                value = eval(code, namespace)
            else:
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
        sys.stdout.write(printed.getvalue())
        if comment is None:
            continue
        call = node.value
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == "print"
        ):
            assert printed.getvalue().strip() == comment, f"{where}: printed text differs"
            continue
        ok, expected = _expected(comment, namespace)
        if ok:
            assert _matches(value, expected), f"{where}: got {value!r}, the page says {comment}"


def _module_file(name: str) -> Path | None:
    base = REPO / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_with(package: str = "colorkit") -> set[str]:
    """The submodules that ``import colorkit`` loads, read from the import statements."""
    loaded: set[str] = set()
    pending = [package]
    while pending:
        name = pending.pop()
        if name in loaded or (path := _module_file(name)) is None:
            continue
        loaded.add(name)
        is_package = path.name == "__init__.py"
        for node in ast.parse(path.read_text()).body:  # module level only: not TYPE_CHECKING
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:  # relative import
                    parts = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    base = ".".join([*parts, node.module])
                pending.append(base)
                pending += [f"{base}.{alias.name}" for alias in node.names]
    # importing a.b.c also binds a.b on a
    return {".".join(name.split(".")[:i]) for name in loaded for i in range(1, name.count(".") + 2)}


def unimported_submodules(code: str) -> list[str]:
    """``colorkit.<submodule>`` names a page uses that neither it nor ``import colorkit`` loads."""
    tree = ast.parse(code)
    available = _imported_with()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                available |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            available |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
            available |= {f"{node.module}.{alias.name}" for alias in node.names}
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            current: ast.AST = node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id == "colorkit":
                dotted = "colorkit"
                for part in reversed(chain):
                    dotted += "." + part
                    if _module_file(dotted) is not None:
                        used.add(dotted)
    return sorted(used - available)


def test_examples_import_the_submodules_they_use() -> None:
    assert "colorkit.engine" in _imported_with() and "colorkit.data" not in _imported_with()
    assert unimported_submodules("import colorkit\ncolorkit.data.embedded_photos()") == [
        "colorkit.data"
    ]
    assert unimported_submodules("import colorkit.data\ncolorkit.data.embedded_photos()") == []
    for page in PAGES:
        code = "\n".join(b.code for b in fenced_blocks(page) if b.language == "python")
        if code:
            # in a test run other tests may have imported them; a reader's session has not
            assert not unimported_submodules(code), (
                f"{page.name} uses {unimported_submodules(code)}"
            )


PYTHON_PAGES = [page for page in PAGES if any(b.language == "python" for b in fenced_blocks(page))]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    torch.manual_seed(0)
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}"}
    colorkit.registry.default_registry().components()  # discover the installed plugins first
    registered = set(colorkit.registry.default_registry()._manager.get_plugins())
    try:
        for block in fenced_blocks(page):
            if block.language == "python":
                run_python_block(block, namespace)
    finally:
        manager = colorkit.registry.default_registry()._manager
        leftovers = set(manager.get_plugins()) - registered
        for plugin in leftovers:  # an example that failed midway must not leak its plugin
            colorkit.registry.default_registry().unregister_plugin(plugin)
    assert not leftovers, f"{page.name} left plugins registered: {leftovers}"


def test_commented_results_are_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = [1, 2, 3]\nsum(x)  # 7\n```\n")
    with pytest.raises(AssertionError, match="got 6"):
        run_python_block(fenced_blocks(page)[0], {})
    page.write_text("```python\nx = ['a', 'b', 'c']\nx  # [..., 'b', ...]\nprint(1)  # 2\n```\n")
    with pytest.raises(AssertionError, match="printed text differs"):
        run_python_block(fenced_blocks(page)[0], {})
    page.write_text("```python\nx = 2\nx\n# the value of x, in words\nx * 3\n# 6\n```\n")
    run_python_block(fenced_blocks(page)[0], {})  # prose comments are not results


# -- checking shell commands ----------------------------------------------------------------
def shell_commands(block: Block) -> Iterator[tuple[str, list[str]]]:
    """``(where, argv)`` for each command of a shell block (prompts and ``\\`` joins handled)."""
    logical: list[tuple[int, str]] = []
    pending = ""
    for offset, raw in enumerate(block.code.splitlines()):
        line = raw.rstrip()
        if not pending:
            start = offset
            line = re.sub(r"^\s*\$\s+", "", line)
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((start, pending + line))
        pending = ""
    for offset, line in logical:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{_shown(block.page)}:{block.line + offset}"
        argv = shlex.split(text, comments=True)
        # leading environment assignments (OMP_NUM_THREADS=1 torchrun ...)
        while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
            argv = argv[1:]
        if argv:
            yield where, argv


def _parse_colorkit(argv: list[str], where: str) -> None:
    from colorkit.cli import build_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        # --help and --version exit 0; a bad command or option exits 2
        assert exc.code == 0, f"{where}: colorkit {shlex.join(argv)}: {stderr.getvalue()}"


def _check_torchrun(argv: list[str], where: str) -> None:
    from torch.distributed.run import get_args_parser

    assert "-m" in argv, f"{where}: torchrun lines run colorkit as a module (-m colorkit)"
    split = argv.index("-m")
    assert argv[split + 1 : split + 3] == ["colorkit", "train"], (
        f"{where}: expected torchrun ... -m colorkit train ..., got {shlex.join(argv)}"
    )
    try:
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            get_args_parser().parse_args(argv[1:])  # torchrun's own options
    except SystemExit:
        raise AssertionError(f"{where}: torchrun options: {stderr.getvalue()}") from None
    _parse_colorkit(argv[split + 2 :], where)


def _extras() -> set[str]:
    """The optional-dependency groups of pyproject.toml (read without tomllib, for Python 3.10)."""
    text = (REPO / "pyproject.toml").read_text()
    section = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", text, re.M | re.S)
    assert section, "pyproject.toml has no [project.optional-dependencies]"
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*=", section.group(1), re.M))


def _check_pip(argv: list[str], where: str) -> None:
    targets = [arg for arg in argv[2:] if not arg.startswith("-")]
    assert targets, f"{where}: pip install names nothing"
    for target in targets:
        match = re.fullmatch(r"(?P<path>[^\[\]]+)(\[(?P<extras>[^\]]*)\])?", target)
        assert match, f"{where}: cannot read pip target {target!r}"
        path = match.group("path")
        if path == "colorkit" or not (path.startswith(".") or "/" in path):
            assert path == "colorkit", f"{where}: pip installs {path!r}, not colorkit"
            continue
        folder = (REPO / path).resolve()
        assert (folder / "pyproject.toml").is_file(), f"{where}: {path} has no pyproject.toml"
        if match.group("extras") and folder == REPO:
            unknown = set(match.group("extras").split(",")) - _extras()
            assert not unknown, f"{where}: unknown extras {sorted(unknown)}"


#: pytest's own options that take a value as the next argument (``-k EXPR``).
_PYTEST_VALUE_OPTIONS = frozenset({"-k", "-m", "-p", "-o", "-c", "--rootdir", "--durations"})


def _conftest_options() -> dict[str, bool]:
    """The options the project's conftest files add, each with whether it takes a value."""
    options: dict[str, bool] = {}
    folders = [REPO, *(p for p in REPO.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for conftest in (folder / "conftest.py" for folder in folders):
        if not conftest.is_file():
            continue
        for node in ast.walk(ast.parse(conftest.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "addoption"):
                continue
            action = next((k.value for k in node.keywords if k.arg == "action"), None)
            flag = isinstance(action, ast.Constant) and action.value in (
                "store_true",
                "store_false",
                "count",
            )
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("-"):
                    options[arg.value] = not flag
    return options


def _check_pytest(argv: list[str], where: str) -> None:
    takes_value = {**dict.fromkeys(_PYTEST_VALUE_OPTIONS, True), **_conftest_options()}
    skip_next = False
    for arg in argv[1:]:
        if skip_next:
            skip_next = False
            continue
        if arg.startswith("-"):
            skip_next = "=" not in arg and takes_value.get(arg, False)
            continue
        path = arg.split("::")[0]
        assert (REPO / path).exists(), f"{where}: pytest target {path} does not exist"


def check_command(where: str, argv: list[str]) -> bool:
    """Check one shell command; ``False`` for commands this test does not know."""
    if argv[0] == "colorkit":
        _parse_colorkit(argv[1:], where)
    elif argv[0] == "torchrun":
        _check_torchrun(argv, where)
    elif argv[:2] == ["pip", "install"]:
        _check_pip(argv, where)
    elif argv[0] == "pytest":
        _check_pytest(argv, where)
    else:
        return False
    return True


SHELL_BLOCKS = blocks_of(SHELL_LANGUAGES)


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.where)
def test_shell_commands_parse(block: Block) -> None:
    checked = [check_command(where, argv) for where, argv in shell_commands(block)]
    assert checked, f"{block.where}: empty shell block"


def test_shell_checks_catch_renamed_options_and_bad_targets() -> None:
    with pytest.raises(AssertionError, match="unrecognized arguments: --stepz"):
        check_command("x", ["colorkit", "train", "--stepz", "3"])
    with pytest.raises(AssertionError, match="invalid choice"):
        check_command("x", ["colorkit", "colourise", "a.safetensors"])
    with pytest.raises(AssertionError, match="-m colorkit train"):
        check_command("x", ["torchrun", "--nproc_per_node", "2", "-m", "colorkit", "list"])
    with pytest.raises(AssertionError, match=r"no pyproject\.toml"):
        check_command("x", ["pip", "install", "-e", "plugins/nothing-here"])
    with pytest.raises(AssertionError, match="unknown extras"):
        check_command("x", ["pip", "install", "-e", ".[dev,typo]"])
    with pytest.raises(AssertionError, match="does not exist"):
        check_command("x", ["pytest", "tests/test_nothing.py"])
    assert _conftest_options()["--benchmark"] is False  # a flag
    assert _conftest_options()["--budget"] is True  # takes a value
    with pytest.raises(AssertionError, match="target smoke does not exist"):
        check_command("x", ["pytest", "benchmarks/", "--benchmark", "--budgett", "smoke"])
    assert check_command("x", ["pytest", "-q", "tests/", "--budget", "smoke", "-k", "docs"])
    assert check_command("x", ["colorkit", "demo", "--help"])
    assert not check_command("x", ["ls", "runs"])


def test_shell_commands_join_continuations_and_drop_prompts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ colorkit train --steps 2 \\\n    --size 32  # small\n# a comment\n"
        "OMP_NUM_THREADS=1 torchrun --nproc_per_node 2 -m colorkit train\n```\n"
    )
    found = list(shell_commands(fenced_blocks(page)[0]))
    assert found == [
        ("page.md:2", ["colorkit", "train", "--steps", "2", "--size", "32"]),
        ("page.md:5", ["torchrun", "--nproc_per_node", "2", "-m", "colorkit", "train"]),
    ]


def test_docs_show_every_command_and_the_readme_install_line() -> None:
    commands = {
        argv[1] for b in SHELL_BLOCKS for _, argv in shell_commands(b) if argv[0] == "colorkit"
    }
    assert commands >= {"train", "evaluate", "colorize", "list", "demo"}
    readme_installs = [
        shlex.join(argv)
        for b in fenced_blocks(README)
        if b.language in SHELL_LANGUAGES
        for _, argv in shell_commands(b)
        if argv[:2] == ["pip", "install"]
    ]
    quickstart = [
        shlex.join(argv)
        for b in fenced_blocks(DOCS / "quickstart.md")
        if b.language in SHELL_LANGUAGES
        for _, argv in shell_commands(b)
        if argv[:2] == ["pip", "install"]
    ]
    assert quickstart, "the Quickstart shows no install command"
    assert set(quickstart) <= set(readme_installs), "the Quickstart's install differs from README's"


def test_toml_excerpts_match_a_pyproject() -> None:
    sources = [REPO / "pyproject.toml", *sorted(REPO.glob("plugins/*/pyproject.toml"))]
    texts = [source.read_text() for source in sources]
    blocks = blocks_of({"toml"})
    assert blocks, "the docs show no pyproject.toml excerpt"
    for block in blocks:
        assert any(block.code.strip() in text for text in texts), (
            f"{block.where}: this TOML is in no pyproject.toml of the repository"
        )


# -- docstring examples -------------------------------------------------------------------------
@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_docstring_examples_run(
    module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, module_name, globs={}):
        if test.examples:
            runner.run(test, out=sys.stdout.write)
    result = runner.summarize(verbose=False)
    if ">>>" in inspect.getsource(module):
        assert result.attempted > 0, f"{module_name}: its docstring examples were not found"
    assert result.failed == 0, f"{module_name}: {result.failed} docstring example(s) failed"


# -- docstrings of the public API -----------------------------------------------------------
_SECTION = re.compile(r"^(?P<indent>[ \t]*)(?P<name>[A-Z][A-Za-z ]*):[ \t]*$")
_ENTRY = re.compile(r"^(?P<name>\*{0,2}[A-Za-z_][A-Za-z0-9_.]*)\s*(\([^)]*\))?\s*:")


def docstring_sections(doc: str) -> dict[str, list[str]]:
    """Google-style sections of a docstring and the names their entries start with."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    indent = ""
    entry_indent: int | None = None
    for line in inspect.cleandoc(doc).splitlines():
        header = _SECTION.match(line)
        if header and (current is None or len(header.group("indent")) <= len(indent)):
            current, indent, entry_indent = header.group("name"), header.group("indent"), None
            sections.setdefault(current, [])
            continue
        if current is None or not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= len(indent):
            current = None
            continue
        if entry_indent is None:
            entry_indent = depth
        if depth == entry_indent:
            entry = _ENTRY.match(line.strip())
            sections[current].append(entry.group("name").lstrip("*") if entry else line.strip())
    return sections


def _public_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
        ]
    return list(names)


def _is_hook_implementation(value: Any) -> bool:
    """A ``@colorkit.hookimpl`` function: its contract is the documented hook specification."""
    return hasattr(value, f"{colorkit.hookspecs.PROJECT}_impl")


def _raised_names(function: Callable[..., Any]) -> set[str]:
    """Exception classes the function's own body raises by name (not nested functions)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return set()
    body = tree.body[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                target = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                name = (
                    target.attr
                    if isinstance(target, ast.Attribute)
                    else getattr(target, "id", None)
                )
                if name and name[0].isupper() and name != "AssertionError":
                    names.add(name)
            visit(child)

    visit(body)
    return names


def _check_function(function: Callable[..., Any], label: str, problems: list[str]) -> None:
    doc = inspect.getdoc(function)
    if not doc:
        problems.append(f"{label}: no docstring")
        return
    sections = docstring_sections(doc)
    documented = set(sections.get("Args", []) + sections.get("Arguments", []))
    signature = inspect.signature(function)
    wanted = [
        name
        for name, parameter in signature.parameters.items()
        if name not in ("self", "cls")
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    missing = [name for name in wanted if name not in documented]
    if missing:
        problems.append(f"{label}: Args does not name {', '.join(missing)}")
    annotation = signature.return_annotation
    returns_value = (
        annotation not in (inspect.Signature.empty, None, "None")
        and function.__name__ != "__init__"
    )
    if returns_value and not ({"Returns", "Return", "Yields"} & set(sections)):
        problems.append(f"{label}: no Returns section")
    raised = _raised_names(function)
    if raised:
        listed = " ".join(sections.get("Raises", []))
        unlisted = sorted(name for name in raised if name not in listed)
        if unlisted:
            problems.append(f"{label}: Raises does not name {', '.join(unlisted)}")


def _is_inherited_contract(cls: type, name: str) -> bool:
    """A method overriding one of a base class outside colorkit (``forward``, ``__len__``)."""
    return any(
        name in vars(base) and not base.__module__.startswith("colorkit")
        for base in cls.__mro__[1:]
    )


def _check_class(cls: type, label: str, problems: list[str]) -> None:
    doc = inspect.getdoc(cls) if cls.__doc__ else None
    if not doc:
        problems.append(f"{label}: no docstring")
        return
    init = vars(cls).get("__init__")
    if getattr(init, "__module__", None) == "typing":
        init = None  # the placeholder typing gives a Protocol, which has no constructor
    if init is not None or "__dataclass_fields__" in vars(cls):
        sections = docstring_sections(doc)
        documented = set(sections.get("Args", []) + sections.get("Attributes", []))
        if init is not None and init.__doc__:
            documented |= set(docstring_sections(init.__doc__).get("Args", []))
        parameters = inspect.signature(cls).parameters.items()
        missing = [
            name
            for name, parameter in parameters
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            and name not in documented
        ]
        if missing:
            problems.append(f"{label}: Args does not name {', '.join(missing)}")
        raised = _raised_names(init) if init is not None else set()
        listed = " ".join(sections.get("Raises", []))
        if init is not None and init.__doc__:
            listed += " " + " ".join(docstring_sections(init.__doc__).get("Raises", []))
        unlisted = sorted(name for name in raised if name not in listed)
        if unlisted:
            problems.append(f"{label}: Raises does not name {', '.join(unlisted)}")
    for name, member in vars(cls).items():
        if name.startswith("_") or _is_inherited_contract(cls, name):
            continue
        if isinstance(member, property):
            if not member.__doc__:
                problems.append(f"{label}.{name}: no docstring")
        elif isinstance(member, (staticmethod, classmethod)):
            _check_function(member.__func__, f"{label}.{name}", problems)
        elif inspect.isfunction(member):
            _check_function(member, f"{label}.{name}", problems)


def public_api_problems() -> list[str]:
    """Every gap in the docstrings of the public API, one line each."""
    problems: list[str] = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not module.__doc__:
            problems.append(f"{module_name}: no module docstring")
        for name in _public_names(module):
            value = getattr(module, name)
            home = getattr(value, "__module__", None)
            if module_name == "colorkit" and home != "colorkit":
                continue  # a re-export: checked in the module that defines it
            label = f"{module_name}.{name}"
            if _is_hook_implementation(value) and module_name != "colorkit.hookspecs":
                continue
            if inspect.isclass(value):
                _check_class(value, label, problems)
            elif inspect.isfunction(value):
                _check_function(value, label, problems)
    return sorted(set(problems))


#: Gaps found when this test was written, in modules whose owners fix them; remove each line
#: as it is fixed (test_known_docstring_gaps_are_fixed then passes and its mark can go too).
def test_public_api_docstrings_are_complete() -> None:
    problems = public_api_problems()
    assert not problems, "public API without complete docstrings:\n" + "\n".join(problems)


def test_docstring_checker_finds_gaps() -> None:
    def documented(path: str, count: int = 1) -> int:
        """Do something.

        Args:
            path: a path.
            count: how many.

        Returns:
            A number.

        Raises:
            ValueError: for a bad count.
        """
        if count < 0:
            raise ValueError(count)
        return count

    def undocumented(path: str, count: int = 1) -> int:
        """Do something.

        Args:
            path: a path.
        """
        if count < 0:
            raise KeyError(count)
        return count

    problems: list[str] = []
    _check_function(documented, "documented", problems)
    assert problems == []
    _check_function(undocumented, "undocumented", problems)
    assert problems == [
        "undocumented: Args does not name count",
        "undocumented: no Returns section",
        "undocumented: Raises does not name KeyError",
    ]


# -- the API reference and the site -----------------------------------------------------------
def _reference_text() -> str:
    return "\n".join(page.read_text() for page in sorted((DOCS / "reference").glob("*.md")))


def test_api_reference_names_every_module_and_every_top_level_name() -> None:
    text = _reference_text()
    for module_name in PUBLIC_MODULES:
        assert re.search(rf"^::: {re.escape(module_name)}\s*$", text, re.M), module_name
    for name in colorkit.__all__:
        assert re.search(rf"\b{re.escape(name)}\b", text), (
            f"colorkit.{name} is not in the reference"
        )


def test_every_page_is_in_the_nav() -> None:
    config = (REPO / "mkdocs.yml").read_text()
    for page in sorted(DOCS.rglob("*.md")):
        relative = page.relative_to(DOCS).as_posix()
        assert re.search(rf":\s+{re.escape(relative)}\s*$", config, re.M), f"{relative} not in nav"


def _rendered_ids(site: Path) -> set[str]:
    ids: set[str] = set()
    for html in site.rglob("*.html"):
        ids.update(re.findall(r'id="(colorkit[\w.]*)"', html.read_text(encoding="utf-8")))
    return ids


def test_mkdocs_build_is_strict_clean_and_renders_the_public_api(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "WARNING" not in output, output[-5000:]
    assert (site / "images" / "concepts.svg").is_file()
    external = re.compile(r'<(?:script|link|img)[^>]*(?:src|href)="(?:https?:)?//', re.I)
    offline = [p.name for p in site.rglob("*.html") if external.search(p.read_text("utf-8"))]
    assert not offline, f"pages that load resources from the network: {offline}"
    assert not (site / "_ext").exists()
    ids = _rendered_ids(site)
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in _public_names(module):
            value = getattr(module, name)
            if not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if _is_hook_implementation(value):
                continue
            home = f"{module_name}.{name}"
            if module_name == "colorkit" and value.__module__ != "colorkit":
                home = f"{value.__module__}.{name}"
            if home not in ids:
                missing.append(home)
    assert not missing, f"not rendered in the API reference: {missing}"


# -- the architecture page ------------------------------------------------------------------
def _layers() -> dict[str, int]:
    """Module → index of its layer in docs/architecture.md's first table."""
    lines = (DOCS / "architecture.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| **")]
    return {
        name: index
        for index, row in enumerate(rows)
        for name in re.findall(r"`(\w+)`", row.rstrip("|").split("|")[-1])
    }


def test_imports_follow_the_layers_of_the_architecture_page() -> None:
    layers = _layers()
    assert {"registry", "engine", "trainer", "metrics"} <= set(layers)
    package = REPO / "colorkit"
    on_top = {"__init__", "__main__", "cli", "demo", "web"}
    wrong = []
    for path in sorted(package.glob("*.py")):
        module = path.stem
        assert module in layers or module in on_top, f"{module} has no layer on the page"
        if module in on_top:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = (
                    [alias.name for alias in node.names]
                    if node.module == "colorkit"
                    else [node.module.removeprefix("colorkit.").split(".")[0]]
                )
                if not node.module.startswith("colorkit"):
                    continue
                for name in names:
                    if name in layers and layers[name] > layers[module]:
                        wrong.append(f"{module} imports {name}")
    assert not wrong, f"imports from a lower layer: {wrong}"
