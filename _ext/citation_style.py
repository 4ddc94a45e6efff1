"""Sphinx extension: one author-year citation style in the text and in the bibliography.

sphinxcontrib-bibtex writes in-text citations as "Bengio et al., 1994" (``bibtex_reference_style:
author_year``) but labels the bibliography with pybtex's ``alpha`` style ("[BSF94]"), so a reader
cannot find a citation in the list. This registers a pybtex formatting style ``authoryear``
(pybtex's ``unsrt`` entries, sorted by author and year) whose labels are the in-text ones:
"Elman, 1990", "Hochreiter and Schmidhuber, 1997", "Bengio et al., 1994"; a second work of
the same authors and year gets "1994a", "1994b". ``bibtex_default_style`` is set to it.
"""

from __future__ import annotations

import re
from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

_BRACES = re.compile(r"[{}]")


def _surname(person) -> str:
    parts = [*person.prelast_names, *person.last_names]
    return _BRACES.sub("", " ".join(parts)) or _BRACES.sub("", str(person))


def author_year(entry) -> str:
    """The in-text label of one entry, without the a/b suffix."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if not names:
        who = _BRACES.sub("", entry.fields.get("title", entry.key))[:30]
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        counts = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def _configure(app, config):
    config.bibtex_default_style = "authoryear"


def setup(app):
    app.connect("config-inited", _configure, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
