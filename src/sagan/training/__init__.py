"""Training: losses, the GAN update steps, the loop (`trainer.train`), optimisers, logging, torchrun."""
