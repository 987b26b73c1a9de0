"""Interactive widgets for the chapters, and their kernel-free twins.

Every ``*_explorer`` function returns an ``ipywidgets`` box: sliders on top, a picture
below it, and a line of text with the numbers in the picture. When a control moves, the
picture is redrawn: a small pyplot-free matplotlib figure rendered to PNG bytes inside an
``ipywidgets.Image``. Because the picture is an ordinary widget value, the last one drawn
is saved with the notebook's widget state, and the static web book shows it (its sliders
move, but with no kernel they redraw nothing).

Every ``*_scrubber`` function is the same picture precomputed for a handful of values
(at most about 12 frames, 72 dpi) and played by a JavaScript slider
(:func:`vae_lib.plots.jshtml_scrubber`). It needs no kernel, so it works on the web page.

============================  ============================  =======
widget                        kernel-free twin              chapter
============================  ============================  =======
``mu_sigma_explorer``         ``mu_sigma_scrubber``         1
``posterior_prior_explorer``  ``posterior_prior_scrubber``  2
``reparam_explorer``          ``reparam_scrubber``          3
``beta_explorer``             ``beta_scrubber``             4
``latent_explorer``           ``latent_scrubber``           5
``style_explorer``            ``style_scrubber``            7
============================  ============================  =======

An explorer (an :class:`Explorer`) exposes what it shows, so that tests and teachers can drive it
from Python::

    w = mu_sigma_explorer()
    w.controls["sigma"].value = 0.2   # any control, by name; the picture is redrawn at once
    w.state["kl"]                     # the numbers shown (floats), here KL(q || p) in nats
    w.image.value                     # the PNG bytes shown (w.images: every picture, by name)
    w.text.value                      # the text line under the picture

Each picture is a :class:`View`: an object that draws its figure once and then, in
``update(**values)``, moves its artists to the controls' values and returns the numbers shown.
That is the whole contract between an explorer and its pictures.

Extreme values are clamped, never passed on to the maths: σ is floored at ``SIGMA_MIN``
and ``|μ|`` capped at ``MU_MAX`` for the densities, plot limits are always finite. Counts
(``n_samples``, ``steps``, ``trials``, ``max_points``, ...) below their minimum raise a
``ValueError`` that names the argument.

Colab: ipywidgets 8 needs Colab's custom widget manager. Run
``from google.colab import output; output.enable_custom_widget_manager()`` once per
session (the chapters' install guard does this), or the widgets do not appear.

The ``browser_*`` factories (module ``explorers``) need no kernel at all: they export a small
MLP VAE's weights into the cell's HTML output and run the model in the reader's page, in a
notebook and in the built book alike (module ``vae_lib.widgets.explorers``).

The code lives in one module per chapter (``mu_sigma``, ``posterior``, ``reparam``, ``beta``,
``latent``) over the shared machinery in ``_base``; everything is imported here.
"""
from __future__ import annotations

from ._base import SIGMA_MIN, MU_MAX, DPI, MAX_FRAMES, Explorer, View
from .mu_sigma import mu_sigma_explorer, mu_sigma_scrubber
from .posterior import posterior_prior_explorer, posterior_prior_scrubber
from .reparam import reparam_explorer, reparam_scrubber
from .beta import beta_explorer, beta_scrubber
from .latent import latent_explorer, latent_scrubber
from .explorers import BrowserExplorer, browser_latent_explorer, browser_draw_digit, browser_reparam_explorer
from . import conditional  # Part II, chapter 7
from .conditional import *  # noqa: F401,F403

__all__ = [
    "Explorer",
    "View",
    "mu_sigma_explorer",
    "mu_sigma_scrubber",
    "posterior_prior_explorer",
    "posterior_prior_scrubber",
    "reparam_explorer",
    "reparam_scrubber",
    "beta_explorer",
    "beta_scrubber",
    "latent_explorer",
    "latent_scrubber",
    *conditional.__all__,
]
# The browser explorers are importable from here too; they are documented (and listed in
# __all__) in their own module, vae_lib.widgets.explorers.
