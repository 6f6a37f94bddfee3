"""The AAE objective: an autoencoder phase and a latent discriminator phase.

Follows the seed (PyTorch-GAN's aae.py): the encoder and decoder share one Adam optimiser
and minimise (1 - w) * L1(x_hat, x) + w * BCE(D(z), real); D learns to tell prior samples
(real) from codes of data (fake).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.optim import Adam

from gan_registry import Phase

from . import _priors


class AAEObjective:
    def __init__(self, params) -> None:
        self.params = params

    def sample_latent(self, n: int, latent_dim: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
        """The prior: used for the discriminator's "real" codes, sample grids and `gan sample`."""
        p = self.params
        if p.prior == "mixture":
            return _priors.mixture(n, latent_dim, device, generator, components=p.mixture_components,
                                   radius=p.mixture_radius, std=p.mixture_std)
        return _priors.normal(n, latent_dim, device, generator)

    def autoencoder_loss(self, models, batch):
        w = self.params.adversarial_weight
        codes = models.encoder(batch.real)
        reconstruction = F.l1_loss(models.generator(codes), batch.real)
        logits = models.discriminator(codes).view(-1)
        adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        loss = (1 - w) * reconstruction + w * adversarial
        return loss, {"autoencoder/l1": reconstruction, "autoencoder/adversarial": adversarial}

    def discriminator_loss(self, models, batch):
        # A fresh batch of its own (the engine hands each real phase the next batch); the seed
        # reuses the autoencoder step's codes instead. Codes are detached: only D learns here.
        with torch.no_grad():
            codes = models.encoder(batch.real)
        prior_logits = models.discriminator(batch.noise(codes.shape[0])).view(-1)
        code_logits = models.discriminator(codes).view(-1)
        real = F.binary_cross_entropy_with_logits(prior_logits, torch.ones_like(prior_logits))
        fake = F.binary_cross_entropy_with_logits(code_logits, torch.zeros_like(code_logits))
        return 0.5 * (real + fake)

    def phases(self, models):
        p = self.params
        autoencoder = list(models.encoder.parameters()) + list(models.generator.parameters())
        return [
            Phase(name="autoencoder", loss=self.autoencoder_loss,
                  optimizer=Adam(autoencoder, lr=p.lr_autoencoder, betas=p.betas)),
            Phase(name="discriminator", loss=self.discriminator_loss,
                  optimizer=Adam(models.discriminator.parameters(), lr=p.lr_discriminator, betas=p.betas)),
        ]
