"""Hand-written Triton kernels for SASS, installed as ``samic_fast.kernels``."""
