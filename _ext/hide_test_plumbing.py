"""Sphinx extension: keep test plumbing out of the code readers study.

A cell whose output legitimately varies carries the tag ``nbval-ignore-output`` and, in its
metadata, the reason (``tools/nbtool.py nbval-reasons`` moves an old ``# nbval-ignore-output:
<reason>`` first line there). Until every notebook is converted, this removes such comment
lines from the code the book shows (and its copy button copies), so readers never see them.
"""

from __future__ import annotations

import re

from docutils import nodes

PLUMBING = re.compile(r"^\s*#\s*nbval-(ignore-output|skip|raises-exception)\b.*$")


def strip_plumbing(text: str) -> str:
    lines = text.split("\n")
    kept = [line for line in lines if not PLUMBING.match(line)]
    if len(kept) == len(lines):
        return text
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept)


def _strip(app, doctree):
    for block in list(doctree.findall(nodes.literal_block)):
        parent = block.parent
        if not (isinstance(parent, nodes.container) and "cell_input" in parent.get("classes", [])):
            continue
        text = block.astext()
        new = strip_plumbing(text)
        if new != text:
            block.children = [nodes.Text(new)]
            block.rawsource = new


def setup(app):
    app.connect("doctree-read", _strip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
