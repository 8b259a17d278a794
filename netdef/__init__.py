"""netdef: a compiler for Caffe-style network and solver definitions."""
__version__ = "0.1.0"
