"""tb-lossdoctor: diagnose training curves in TensorBoard logs."""

__version__ = "0.1.0"
