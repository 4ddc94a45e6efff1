"""Sphinx extension: the API reference page of `bptt`, generated from the package itself.

``api.md`` holds the marker ``<!-- bptt-api-modules -->``; this replaces it, when the page is
read, by one section per public module of ``bptt`` (found by walking the package, so a module
added by a later change appears without editing the page), each an ``automodule`` of that
module's own functions and classes.

Docstrings are written for ``help()`` and Jupyter's ``?`` (numpy-style sections, shapes such as
``(B, T, H)``, ``|w|``), not as reStructuredText: parsed as reST they would raise warnings, and
the book builds with warnings as errors. So each docstring is shown as the preformatted text it
is, under the signature Sphinx writes; signatures carry no type hints (they would be unresolved
cross-references under ``--nitpick``). Chapters link a function with {py:func}`bptt.rnn.forward`.
"""

from __future__ import annotations

import importlib
import pkgutil

MARKER = "<!-- bptt-api-modules -->"
PACKAGE = "bptt"
# Instructor machinery with its own documentation; private modules start with "_".
SKIPPED = ("bptt.grading",)


def public_modules() -> list[str]:
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        parts = info.name.split(".")
        if any(part.startswith("_") for part in parts):
            continue
        if any(info.name == s or info.name.startswith(s + ".") for s in SKIPPED):
            continue
        names.append(info.name)
    return sorted(names)


def module_sections() -> str:
    blocks = []
    for name in public_modules():
        blocks.append(
            f"(api-{name.replace('.', '-')})=\n## `{name}`\n\n"
            f"```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n```\n"
        )
    return "\n".join(blocks)


def _source_read(app, docname, source):
    if MARKER in source[0]:
        source[0] = source[0].replace(MARKER, module_sections())


def _as_preformatted(app, what, name, obj, options, lines):
    if not lines:
        return
    while lines and not lines[-1].strip():
        lines.pop()
    lines[:] = ["::", ""] + [f"    {line}" if line.strip() else "" for line in lines] + [""]


def _configure(app, config):
    config.autodoc_typehints = "none"
    config.autodoc_member_order = "bysource"
    # module constants typed with a Callable alias (bptt.timing's clocks) render their type,
    # and the standard library's collections.abc has no target in this book
    config.nitpick_ignore = [*config.nitpick_ignore, ("py:class", "collections.abc.Callable")]


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.connect("config-inited", _configure)
    app.connect("source-read", _source_read)
    app.connect("autodoc-process-docstring", _as_preformatted, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
