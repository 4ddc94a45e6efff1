"""Sphinx extension: drop duplicate <script> entries from each page.

Sphinx 7.4 can register the same inline script twice (sphinx-thebe's, for one); its
`const THEBE_JS_URL` then fails on the second copy with "Identifier has already been declared",
a JavaScript error on every page. The browser test (tests/test_browser.py) catches any return.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
