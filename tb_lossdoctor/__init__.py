"""tb-lossdoctor: diagnose training curves in TensorBoard logs."""

__version__ = "0.1.0"

__all__ = ["diagnose_history"]


def __getattr__(name: str):
    """`tb_lossdoctor.diagnose_history`, imported on first use: `import tb_lossdoctor` (which
    TensorBoard does to load the plugin) stays free of the engine until it is needed."""
    if name == "diagnose_history":
        from tb_lossdoctor.history import diagnose_history

        return diagnose_history
    raise AttributeError(f"module 'tb_lossdoctor' has no attribute {name!r}")
