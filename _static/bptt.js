// The course's small fixes to the theme, loaded on every page (Jupyter Book 1 adds every .js
// file under _static/ to every page: keep this file small and free of page-specific code).
//
// Sidebar buttons. pydata-sphinx-theme 0.17.1 binds its sidebar dialogs to the FIRST element
// with the class `primary-toggle` / `secondary-toggle`; sphinx-book-theme 1.3.0 renders a
// second, visible button with the same class in the article header, and the first one is
// hidden (pydata-sphinx-theme issue #2451). Clicks on a visible copy are forwarded to the
// bound button, so the phone menu opens the chapter list and the laptop button collapses the
// sidebar. tests/test_browser.py clicks both at 390 and 1280 px.
(function () {
  function forwardToggleClicks() {
    [".primary-toggle", ".secondary-toggle"].forEach(function (selector) {
      var bound = document.querySelector(selector);
      if (!bound) return;
      document.querySelectorAll(selector).forEach(function (button) {
        if (button === bound || button.dataset.bpttForward) return;
        button.dataset.bpttForward = "1";
        button.addEventListener("click", function (event) {
          event.preventDefault();
          event.stopImmediatePropagation();
          bound.click();
        });
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", forwardToggleClicks);
  } else {
    forwardToggleClicks();
  }
})();
