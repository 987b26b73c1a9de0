"""vae_lib: the small, tested PyTorch library behind The VAE Book.

The public API (see the book's API reference for every function)::

    import vae_lib as vl
    x, y = vl.load_dataset("mnist-5k", split="train")
    model = vl.VAE(input_shape=(1, 28, 28), latent_dim=20)
    history = vl.train(model, x, epochs=10)
"""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .data import DATASETS, DatasetDownloadError, DatasetFileError, binarize, load_dataset
from .glue import glue
from . import classifier, estimators, fused, plots
from . import anomaly, conditional, likelihoods, probes, vq  # Part II, one module per idea
from .device import default_device, model_device
from .estimators import gradient_estimates, gradient_variance_table
from .losses import (
    ELBOTerms,
    bernoulli_log_likelihood,
    gaussian_log_likelihood,
    gaussian_log_prob,
    kl_standard_normal,
    kl_standard_normal_per_dim,
    objective,
    reparameterize,
)
from .metrics import (
    AggregateGap,
    SweepPoint,
    active_units,
    aggregate_posterior_gap,
    beta_sweep,
    embed,
    evaluate,
    iwae_log_likelihood,
    mean_se,
    posterior_stats,
)
from .gaps import InferenceGaps, elbo_of_posterior, inference_gaps, refine_posterior
from .model import VAE, Autoencoder
from .priors import MixturePrior, StandardNormalPrior, VampPrior
from .train import History, train

__version__ = "0.1.0"

__all__ = [
    "DATASETS", "load_dataset", "binarize", "glue", "DatasetFileError", "DatasetDownloadError", "default_device", "model_device",
    "VAE", "Autoencoder", "StandardNormalPrior", "MixturePrior", "VampPrior",
    "ELBOTerms", "reparameterize", "kl_standard_normal", "kl_standard_normal_per_dim", "gaussian_log_prob",
    "bernoulli_log_likelihood", "gaussian_log_likelihood",
    "train", "evaluate", "objective", "History",
    "iwae_log_likelihood", "mean_se", "active_units", "posterior_stats", "embed", "aggregate_posterior_gap", "AggregateGap",
    "beta_sweep", "SweepPoint", "gradient_estimates", "gradient_variance_table", "classifier", "estimators", "fused", "plots",
    "save_checkpoint", "load_checkpoint", "CheckpointError",
    "anomaly", "conditional", "likelihoods", "probes", "vq",
    "refine_posterior", "inference_gaps", "InferenceGaps", "elbo_of_posterior",
]
