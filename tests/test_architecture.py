"""The import rules of docs/architecture.md, checked against the code (the contracts that import-linter's `layers`
and `forbidden` contracts would state, read here with `ast` so that they need nothing beyond the test extra).

The table of docs/architecture.md is the contract: one row per module (or group of modules) in the order the data
flows, with what each module may import in its last column. These tests parse that table and every module's
imports (at any depth, so an import inside a function counts) and hold them against each other:
- a module imports only what its row names, and its row names only what it imports (the table is true);
- no module imports one of a later row (the flow runs one way; the one exception is documented beside the table);
- there are no import circles; `cli.py` imports the package inside its handlers only; no module imports another's
  private (underscored) names;
- nothing in the package imports scripts/ or the tests, and the tests import scripts from their files only.
"""

import ast
import functools
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "modeling_polarbert"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# The one import against the flow that docs/architecture.md names as by design: the simulator writes its files
# through `kaggle_layout`, the contract between the two.
IMPORTS_OF_A_LATER_ROW = {("simulation", "kaggle_layout")}
ANY_OF_THE_ABOVE = "any of the above"


def unit_of(path: Path) -> str:
    """The unit a file belongs to: its module name, or the subpackage's name (`simulation`) for files in one."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imports_of(path: Path) -> list[tuple[str, bool, list[str]]]:
    """(imported module, at module level?, imported names) of every import in `path`; relative imports resolved to
    dotted names under the package (`modeling_polarbert.x.y`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    package_parts = ["modeling_polarbert", *path.relative_to(PACKAGE).parts[:-1]]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level:
                base = package_parts[:len(package_parts) - (node.level - 1)]
                if node.module:
                    found.append((".".join([*base, node.module]), id(node) in top_level, names))
                else:  # from . import x: each name is a module
                    found += [(".".join([*base, name]), id(node) in top_level, []) for name in names]
            else:
                found.append((node.module, id(node) in top_level, names))
    return found


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@functools.cache
def unit_imports() -> dict[str, dict[str, set]]:
    """Per unit: the package units it imports (`package`, `package_top_level`) and the third-party distributions
    (`third_party`, top-level import names; the standard library is free to everyone)."""
    units = {}
    for path in package_files():
        unit = unit_of(path)
        entry = units.setdefault(unit, {"package": set(), "package_top_level": set(), "third_party": set()})
        for module, top_level, _ in imports_of(path):
            parts = module.split(".")
            if parts[0] == "modeling_polarbert":
                if len(parts) > 1 and parts[1] != unit:
                    entry["package"].add(parts[1])
                    if top_level:
                        entry["package_top_level"].add(parts[1])
            elif parts[0] not in sys.stdlib_module_names:
                entry["third_party"].add(parts[0])
    return units


@functools.cache
def architecture_table() -> list[tuple[list[str], list[str]]]:
    """The rows of docs/architecture.md's module table, in order: (units of the row, what they may import)."""
    rows = []
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        units = [Path(name.rstrip("/")).stem for name in re.findall(r"`([^`]+\.py|[^`]+/)`", cells[0])]
        allowed = [re.sub(r"\(.*?\)", "", item).strip() for item in cells[2].split(",")]
        rows.append((units, [item for item in allowed if item]))
    return rows


def row_index() -> dict[str, int]:
    return {unit: index for index, (units, _) in enumerate(architecture_table()) for unit in units}


def test_every_module_has_a_row_in_docs_architecture_and_every_row_a_module():
    documented, modules = set(row_index()), set(unit_imports())
    assert modules - documented == set(), "modules missing from the table of docs/architecture.md"
    assert documented - modules == set(), "rows of docs/architecture.md name modules that do not exist"


@pytest.mark.parametrize("row", range(len(architecture_table())),
                         ids=["+".join(units) for units, _ in architecture_table()])
def test_the_row_in_docs_architecture_names_exactly_what_its_modules_import(row):
    units, allowed = architecture_table()[row]
    imports = unit_imports()
    package_units = set(row_index())
    imported_package = set().union(*(imports[unit]["package"] for unit in units)) - set(units)
    imported_third_party = set().union(*(imports[unit]["third_party"] for unit in units))
    if allowed == [ANY_OF_THE_ABOVE]:
        above = {unit for earlier, _ in architecture_table()[:row] for unit in earlier}
        assert imported_package <= above, f"{units} import modules of a later row: {imported_package - above}"
        assert imported_third_party == set(), f"{units} import third-party modules: {imported_third_party}"
        return
    allowed_package = {name for name in allowed if name in package_units}
    allowed_third_party = set(allowed) - allowed_package
    assert imported_package == allowed_package, (
        f"{units}: imports package modules {sorted(imported_package)}, docs/architecture.md says "
        f"{sorted(allowed_package)}"
    )
    assert imported_third_party == allowed_third_party, (
        f"{units}: imports third-party {sorted(imported_third_party)}, docs/architecture.md says "
        f"{sorted(allowed_third_party)}"
    )


def test_no_module_imports_a_later_stage_of_the_flow():
    index, backwards = row_index(), []
    for unit, entry in unit_imports().items():
        for imported in entry["package"]:
            if index[imported] > index[unit] and (unit, imported) not in IMPORTS_OF_A_LATER_ROW:
                backwards.append(f"{unit} -> {imported}")
    assert backwards == [], "imports from an earlier row of docs/architecture.md to a later one"


def test_there_are_no_import_circles():
    graph = {unit: entry["package"] for unit, entry in unit_imports().items()}
    done, on_path = set(), []

    def visit(unit):
        if unit in on_path:
            raise AssertionError("import circle: " + " -> ".join([*on_path[on_path.index(unit):], unit]))
        if unit in done:
            return
        on_path.append(unit)
        for imported in sorted(graph.get(unit, ())):
            visit(imported)
        on_path.pop()
        done.add(unit)

    for unit in sorted(graph):
        visit(unit)


def test_the_cli_imports_the_package_inside_its_handlers_only():
    # `polarbert --help` then starts without loading torch, datasets or transformers.
    assert unit_imports()["cli"]["package_top_level"] == set()


def test_the_hub_files_import_nothing_else_of_the_package():
    # They travel to the Hub as remote code (docs/architecture.md, "What ships to the Hub").
    imports = unit_imports()
    hub_files = {"configuration_polarbert", "modeling_polarbert", "feature_extraction_polarbert"}
    for unit in hub_files:
        assert imports[unit]["package"] <= hub_files - {unit}, unit


def test_no_module_imports_another_modules_private_names():
    # A name with a leading underscore is its module's own; what another module needs is public (the simulator's
    # steps included: `simulation/__init__.py` says which of them the package's users see).
    private = [f"{path.relative_to(PACKAGE)}: {name} from {module}" for path in package_files()
               for module, _, names in imports_of(path) if module.startswith("modeling_polarbert")
               for name in names if name.startswith("_")]
    assert private == []


def test_nothing_in_the_package_imports_scripts_or_tests():
    for path in package_files():
        for module, _, _ in imports_of(path):
            assert module.split(".")[0] not in ("scripts", "tests", "reference"), f"{path.name} imports {module}"


def test_the_tests_load_scripts_from_their_files_not_by_import():
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(module.split(".")[0] == "scripts" for module in modules), path.name
