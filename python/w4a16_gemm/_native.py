"""Loads the compiled core, turning an import failure into an actionable message."""

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only on broken installs
    raise ImportError(
        "w4a16_gemm's compiled extension (_core) failed to load: "
        f"{exc}. Reinstall with `pip install w4a16-gemm` or build from source with `pip install .`"
    ) from exc

core = _core
