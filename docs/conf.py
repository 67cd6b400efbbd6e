"""Sphinx configuration of the fedplugin documentation.

Build with ``make docs`` (``sphinx -W --keep-going``: warnings are errors). No
extension reads from the network: the build machines have no internet access,
so there is no intersphinx.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.directives.code import LiteralInclude

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import fedplugin  # noqa: E402  (after the path is set)

project = "fedplugin"
author = "fedplugin developers"
copyright = "fedplugin developers"
release = fedplugin.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
]

# Every cross-reference must resolve: ``make docs`` runs with -W, so one that
# does not (and would render as plain text) fails the build. The exceptions:
nitpicky = True
nitpick_ignore_regex = [
    # other packages' classes, shown as bases by :show-inheritance: (no intersphinx: offline builds)
    ("py:class", r"(sklearn|distributed)\..*"),
    # private bases and the Coordinator's mixins: their members are documented on the classes using them
    ("py:class", r"fedplugin\..*\._\w+"),
    ("py:class", r"fedplugin\.(global_model\.GlobalModelMixin|checkpointing\.CheckpointMixin|signals\.SignalsMixin|recording\.RecordingMixin)"),
]
nitpick_ignore = [
    # RoundState's docstring names its instance attribute ``lock``, which has no docstring of its own
    ("py:attr", "lock"),
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# ---------------------------------------------------------------- API reference
autosummary_generate = True
autosummary_generate_overwrite = True
autodoc_typehints = "none"  # the numpydoc sections give the types
autodoc_default_options = {"member-order": "bysource"}
autoclass_content = "class"

numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks: set[str] = set()

# ---------------------------------------------------------------------- output
html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"fedplugin {release}"
html_theme_options = {
    "description": "Federated online learning of scikit-learn models on any Dask cluster",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
pygments_style = "sphinx"


# ------------------------------------------------------------ local directives
class OptionalLiteralInclude(LiteralInclude):
    """``literalinclude`` that shows a note instead of failing when the file is missing.

    Used for ``benchmarks/README.md``, which is written by hand from the
    benchmark runs; a checkout without it still builds with ``-W``.
    """

    def run(self) -> list[nodes.Node]:
        _, path = self.env.relfn2path(self.arguments[0])
        if Path(path).is_file():
            return super().run()
        note = nodes.note()
        note += nodes.paragraph(
            text=f"{self.arguments[0]} is not in this checkout yet; `make bench` prints the measurements."
        )
        return [note]


class SupportedEstimators(Directive):
    """A bullet list of the estimator families fedplugin can federate, read from the code."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import fedplugin.adapters
        from fedplugin.adapters import ADAPTERS

        lines = []
        for adapter in ADAPTERS:
            summary = (adapter.__doc__ or "").strip().splitlines()[0]
            # documented where it is public: fedplugin.adapters, or its own module (CandidateSetAdapter)
            module = "fedplugin.adapters" if hasattr(fedplugin.adapters, adapter.__name__) else adapter.__module__
            lines.append(f"* {adapter.family_names} -- :class:`~{module}.{adapter.__name__}`: {summary}")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="fedplugin.adapters.ADAPTERS"), self.content_offset, container)
        return container.children


class EstimatorTable(Directive):
    """A table of every scikit-learn estimator with partial_fit and how fedplugin combines it (the catalog)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import fedplugin.adapters
        from fedplugin.adapters.catalog import catalog

        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 24 26 14 36", "",
                 "   * - estimator", "     - adapter", "     - combined", "     - needs"]
        for row in catalog():
            adapter = "--"
            if row.adapter is not None:
                module = "fedplugin.adapters" if hasattr(fedplugin.adapters, row.adapter.__name__) else row.adapter.__module__
                adapter = f":class:`~{module}.{row.adapter.__name__}`"
            needs = row.needs.replace("*", "\\*") or "--"
            lines += [f"   * - ``{row.name}``", f"     - {adapter}", f"     - {row.combined}", f"     - {needs}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="fedplugin.adapters.catalog"), self.content_offset, container)
        return container.children


def skip_foreign_members(app, what, name, obj, skip, options):
    """Document the members a class inherits from fedplugin's own bases, not those of other packages.

    Classes are documented with ``:inherited-members:`` so that, e.g., the
    methods the ``Coordinator`` gets from its mixins are on its page; but not
    ``get_params`` from scikit-learn's ``BaseEstimator``, the hooks of
    ``distributed``'s plugin base classes, or scikit-learn's generated
    ``set_<method>_request`` methods (metadata routing), whose docstrings
    refer to their own packages' documentation.
    """
    if what != "class":
        return None
    if re.fullmatch(r"set_\w+_request", name):
        return True
    code = getattr(obj, "fget", None) or getattr(obj, "__func__", None) or obj  # property, classmethod
    if not (inspect.isroutine(code) or inspect.isclass(code)):
        return None  # an attribute: autodoc decides, as without inherited members
    module = getattr(code, "__module__", None) or ""
    return True if module.split(".")[0] != "fedplugin" else None


def setup(app):
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.add_directive("optional-literalinclude", OptionalLiteralInclude)
    app.add_directive("supported-estimators", SupportedEstimators)
    app.add_directive("estimator-table", EstimatorTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
