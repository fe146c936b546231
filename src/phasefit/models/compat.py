"""sentence-transformers module classes under their current import path (>= 6) or the legacy one."""

try:  # sentence-transformers >= 6
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling, Transformer
except ImportError:  # pragma: no cover - older releases
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

__all__ = ["Dense", "Normalize", "Pooling", "Transformer"]
