"""The MMAudio family (Cheng et al., CVPR 2025): CLIP and Synchformer video conditions and CLIP text, a flow-matching
multimodal transformer, a 1D mel VAE and BigVGAN vocoders, written here to load the published weights key for key."""
