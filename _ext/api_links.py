"""Sphinx extension: a function named in a chapter's prose links to its API reference entry.

Code cells are linked by ``sphinx_codeautolink`` (every name a cell uses). Prose names
functions as inline code: `` `bptt.rnn.backward` ``, `` `rnn.backward(...)` `` (the module
imported from ``bptt``) or `` `train_tbptt` `` (a name defined once in the package). On each
page, the first such mention of an object documented on the API page becomes a link to its
entry, the way a textbook points to its reference section where a function first appears;
later mentions stay plain so the prose is not a wall of links. Names that are not ``bptt``
objects (`` `loss.backward` ``, `` `nn.LSTM` ``) are left alone.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.nodes import make_refnode

PACKAGE = "bptt"
_CALL = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(\(.*\))?$", re.DOTALL)


def candidates(text: str) -> list[str]:
    """The fully qualified names an inline-code mention may stand for, most explicit first."""
    match = _CALL.match(text.strip())
    if match is None:
        return []
    name = match.group("name").rstrip(".")
    if name == PACKAGE or name.startswith(PACKAGE + "."):
        return [name]
    return [f"{PACKAGE}.{name}"]


def resolve(text: str, objects: dict[str, tuple[str, str]]) -> str | None:
    """The documented object ``text`` names, or None.

    ``objects`` maps fully qualified names to (docname, anchor). A qualified mention must match
    exactly; a bare name (no dot) matches when exactly one documented object ends with it, so
    ``train_tbptt`` finds ``bptt.torch.tbptt.train_tbptt`` and ``forward`` (several) finds none.
    """
    for name in candidates(text):
        if name in objects:
            return name
    match = _CALL.match(text.strip())
    if match is None or "." in match.group("name"):
        return None
    bare = match.group("name")
    found = [
        full for full in objects if full.startswith(PACKAGE + ".") and full.endswith("." + bare)
    ]
    return found[0] if len(found) == 1 else None


def _reexported(objects: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Also index each object under the package paths that re-export it (``bptt.torch.X``)."""
    extra: dict[str, tuple[str, str]] = {}
    for full, target in objects.items():
        parts = full.split(".")
        for cut in range(2, len(parts) - 1):
            extra.setdefault(".".join(parts[:cut] + parts[-1:]), target)
    return {**extra, **objects}


class LinkApiMentions(SphinxPostTransform):
    default_priority = 20  # after pending cross-references are resolved (priority 10)
    formats = ("html",)

    def run(self, **kwargs) -> None:
        docname = self.env.docname
        if not docname.startswith(("chapters/", "exercises/", "solutions/")):
            return
        domain = self.env.get_domain("py")
        objects = {
            name: (entry.docname, entry.node_id)
            for name, entry in domain.objects.items()
            if name.startswith(PACKAGE + ".") and entry.objtype != "module" and not entry.aliased
        }
        objects = _reexported(objects)
        linked: set[tuple[str, str]] = set()
        for literal in list(self.document.findall(nodes.literal)):
            if isinstance(literal.parent, (nodes.reference, nodes.literal_block, nodes.title)):
                continue
            if literal.get("classes") and "xref" in literal["classes"]:
                continue
            target = resolve(literal.astext(), objects)
            if target is None:
                continue
            target_doc, anchor = objects[target]
            if (target_doc, anchor) in linked:
                continue
            linked.add((target_doc, anchor))
            ref = make_refnode(
                self.app.builder, docname, target_doc, anchor, literal.deepcopy(), title=target
            )
            ref["classes"].append("bptt-api-link")
            literal.replace_self(ref)


def setup(app):
    app.add_post_transform(LinkApiMentions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
