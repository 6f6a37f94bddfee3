"""Image-quality metrics for gan-registry and the feature extractors they compare images in.

Metrics (`gan eval --metric NAME`): fid, kid, is, precision-recall, density-coverage. Their math is
torch-fidelity's (FID, KID, IS, precision/recall) and prdc's (density/coverage). stacked-modes counts the
digit triples of Stacked MNIST a generator reaches (VEEGAN, PacGAN), classifying each channel with the
classifier extractor's network. Extractors (`--extractor NAME`): inception-v3 (torch-fidelity's port of the
TF FID network) and classifier (a small conv net trained on the dataset's own labels, cached).
"""
