"""Sphinx extension: with thebe switched off, sphinx-thebe adds nothing to the pages.

jupyter-book always loads ``sphinx_thebe``, whatever ``launch_buttons: thebe`` says. Its
``init_thebe_core`` then registers an inline config script (``const THEBE_JS_URL = ...``)
with ``app.add_js_file(None, body=...)`` after the HTML builder was initialised. Sphinx 7.4
adds such a script twice: once to the builder at once (as ``_JavaScript(None, ...)``) and
again from the registry when writing starts (as ``_JavaScript('', ...)``, which does not
compare equal, so it is not deduplicated). Every page then runs ``const THEBE_JS_URL``
twice and the browser reports ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
declared``.

The cause is removed where it starts: when ``launch_buttons.thebe`` is false, this
extension disconnects sphinx-thebe's event handlers before they run (no config script, no
``sphinx-thebe.js``, no per-page thebe nodes) and drops its stylesheet. With thebe on it
does nothing.
"""
from __future__ import annotations

from typing import Any, Dict

THEBE_MODULE = "sphinx_thebe"


def thebe_enabled(app) -> bool:
    """Whether ``_config.yml`` asks for thebe (``launch_buttons: thebe: true``)."""
    options = getattr(app.config, "html_theme_options", None) or {}
    return bool((options.get("launch_buttons") or {}).get("thebe"))


def _disconnect_thebe(app, config=None) -> None:
    if thebe_enabled(app):
        return
    for event, listeners in list(app.events.listeners.items()):
        for listener in list(listeners):
            if getattr(listener.handler, "__module__", "") == THEBE_MODULE:
                app.disconnect(listener.id)
    app.registry.css_files[:] = [(name, attrs) for name, attrs in app.registry.css_files
                                 if name != "sphinx-thebe.css"]


def setup(app) -> Dict[str, Any]:
    # config-inited: every extension (sphinx_thebe included) is set up, no document read yet
    app.connect("config-inited", _disconnect_thebe, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
