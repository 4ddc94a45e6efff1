"""Sphinx extension: facts at the top of every notebook page, and all notebooks in one zip.

* Under the title of each notebook page: how long the notebook takes to run, read from the
  measured timings in ``benchmarks/results/notebooks.json`` (written by ``make bench``), and a
  link to the zip of all notebooks. Nothing is written into the notebooks themselves.
* After an HTML build, ``NOTEBOOKS_ZIP`` (every notebook of chapters/ and exercises/, with the
  benchmark results the performance appendix reads) is written to the root of the site.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from docutils import nodes

NOTEBOOKS_ZIP = "bptt-notebooks.zip"
ZIPPED = ("chapters/*.ipynb", "exercises/*.ipynb", "benchmarks/results/*.json",
          "benchmarks/results/*.md")
TIMINGS = Path("benchmarks") / "results" / "notebooks.json"


def run_times(srcdir: Path) -> tuple[dict[str, float], str]:
    """{'chapters/06_vanishing_exploding': seconds, ...} and the date of the measurement."""
    path = srcdir / TIMINGS
    if not path.exists():
        return {}, ""
    table = json.loads(path.read_text())
    index = {c: i for i, c in enumerate(table["columns"])}
    times = {}
    for row in table["rows"]:
        name, seconds = row[index["notebook"]], row[index["seconds"]]
        if name.endswith(".ipynb") and isinstance(seconds, (int, float)):
            times[name.removesuffix(".ipynb")] = float(seconds)
    return times, str(table.get("machine", {}).get("date", "")).split(" ")[0]


def describe(seconds: float) -> str:
    if seconds < 5:
        return "under 5 seconds"
    if seconds < 90:
        return f"about {round(seconds / 5) * 5:.0f} seconds"
    return f"about {seconds / 60:.0f} minutes"


def _facts(app, doctree):
    docname = app.env.docname
    if Path(app.env.doc2path(docname)).suffix != ".ipynb":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not section.children or not isinstance(section[0], nodes.title):
        return
    times, date = run_times(Path(app.srcdir))
    paragraph = nodes.paragraph(classes=["bptt-chapter-facts"])
    if docname in times:
        when = f", measured {date}" if date else ""
        paragraph += nodes.Text(
            f"Time to run this notebook: {describe(times[docname])} on a 2-core CPU{when}. "
        )
    zip_uri = "../" * docname.count("/") + NOTEBOOKS_ZIP
    paragraph += nodes.reference("", "Download all notebooks (zip)", refuri=zip_uri)
    paragraph += nodes.Text(".")
    section.insert(1, paragraph)


def _write_zip(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    root = Path(app.srcdir)
    target = Path(app.outdir) / NOTEBOOKS_ZIP
    files = sorted({p for pattern in ZIPPED for p in root.glob(pattern)})
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            relative = path.relative_to(root).as_posix()
            info = zipfile.ZipInfo(f"bptt-notebooks/{relative}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def setup(app):
    app.connect("doctree-read", _facts)
    app.connect("build-finished", _write_zip)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
