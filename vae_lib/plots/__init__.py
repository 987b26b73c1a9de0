"""Figures for the book. Every function returns a ``matplotlib.figure.Figure`` (never calls
``plt.show()``), built without pyplot so nothing leaks between notebook cells.

Images are ``[N, C, H, W]`` tensors in ``[0, 1]``; models are :class:`vae_lib.VAE` or
:class:`vae_lib.Autoencoder`, whose codes and posteriors come from :func:`vae_lib.posterior_stats`
and :func:`vae_lib.embed` (no function branches on the model's type). The functions live in seven
modules by kind (``core``: figure plumbing, image tiling and the scrubber; ``primitives``: the
pieces figures and widgets share, a latent plane's axes, a class scatter for any number of
classes, posterior ellipses; ``images``; ``latent``: the latent space as a whole;
``posteriors``: posteriors q(z|x) and their aggregate; ``curves``; ``gradients``) and are all imported here, so ``vl.plots.plot_latent_scatter`` works as before.
"""
from __future__ import annotations

from .core import new_figure, tile_images, show_images, image_grid, jshtml_scrubber
from .primitives import latent_axes, class_colormap, class_scatter, add_posterior_ellipses
from .images import (
    plot_reconstructions, plot_prior_samples, plot_posterior_samples, interpolation_images, plot_interpolations,
    plot_pixel_nats,
    plot_image_grids, plot_beta_grid,
)
from .latent import plot_latent_scatter, plot_latent_manifold
from .posteriors import (
    plot_posteriors_over_prior, plot_encode_sample_decode, plot_posterior_width, plot_aggregate_posterior,
)
from .curves import (
    plot_loss_curves, plot_rate_distortion, plot_kl_landscape, plot_mc_convergence, plot_elbo_vs_iwae,
    plot_history_comparison, plot_bound_vs_k, plot_kl_per_dim,
)
from .gradients import plot_reparam_graph, plot_gradient_variance
# Part II: one module per chapter, each listing its figures in its own __all__
from . import conditional, representations, likelihoods, vq
from .conditional import *  # noqa: F401,F403
from .representations import *  # noqa: F401,F403
from .likelihoods import *  # noqa: F401,F403
from .vq import *  # noqa: F401,F403

__all__ = [
    "new_figure",
    "tile_images",
    "latent_axes",
    "class_colormap",
    "class_scatter",
    "add_posterior_ellipses",
    "show_images",
    "image_grid",
    "plot_reconstructions",
    "plot_prior_samples",
    "plot_posterior_samples",
    "plot_latent_scatter",
    "plot_latent_manifold",
    "interpolation_images",
    "plot_interpolations",
    "plot_loss_curves",
    "plot_rate_distortion",
    "jshtml_scrubber",
    "plot_reparam_graph",
    "plot_gradient_variance",
    "plot_posteriors_over_prior",
    "plot_kl_landscape",
    "plot_mc_convergence",
    "plot_elbo_vs_iwae",
    "plot_encode_sample_decode",
    "plot_posterior_width",
    "plot_pixel_nats",
    "plot_history_comparison",
    "plot_bound_vs_k",
    "plot_aggregate_posterior",
    "plot_kl_per_dim",
    "plot_image_grids",
    "plot_beta_grid",
]
__all__ += conditional.__all__ + representations.__all__ + likelihoods.__all__ + vq.__all__
