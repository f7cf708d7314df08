"""The VTA-LDM model family (arXiv 2407.07464): its configuration, stages (vision encoder, UNet, VAE decoder,
HiFi-GAN, log-mel) and the importer of the published checkpoint. Imports only the foundations."""
