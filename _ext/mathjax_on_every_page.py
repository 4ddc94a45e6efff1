"""Sphinx extension: load MathJax on every page, not only on pages with math of their own.

Chapter titles hold math ("Eigenvalues and the power of $W$", for one), and the navigation
sidebar repeats every title on every page. Sphinx adds MathJax only where a page's own body has
math, so a page without (the bibliography, say) would show the sidebar's ``\\(W\\)`` untypeset.
The browser test (tests/test_browser.py) checks that every page's math is typeset.
"""


def setup(app):
    app.set_html_assets_policy("always")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
