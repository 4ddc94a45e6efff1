"""Vendor MathJax 3 for the book, so the HTML typesets math without a CDN.

    python tools/fetch_mathjax.py [DEST]      (default: _extra/mathjax)

Downloads the `mathjax` package from the npm registry (a pinned version, checked against its
published sha512 integrity), and unpacks its `es5/` folder into DEST. Sphinx copies `_extra/`
to the root of the built site (`html_extra_path`), and `mathjax_path` in _config.yml points at
it. It is not under `_static/`, because Jupyter Book 1 injects every .js file found there into
every page. Does nothing when DEST already holds this version.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "3.2.2"
URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{VERSION}.tgz"
INTEGRITY = "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
ROOT = Path(__file__).resolve().parent.parent


def fetch(dest: Path) -> None:
    marker = dest / ".version"
    if marker.exists() and marker.read_text().strip() == VERSION:
        return
    print(f"fetching MathJax {VERSION} from the npm registry", flush=True)
    with urllib.request.urlopen(URL, timeout=120) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        raise SystemExit(f"MathJax tarball integrity mismatch: expected {INTEGRITY}, got {digest}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    prefix = "package/es5/"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith(prefix):
                continue
            target = dest / member.name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
    marker.write_text(VERSION + "\n")


if __name__ == "__main__":
    fetch(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_extra" / "mathjax")
