"""Residual vector quantization with EMA codebooks (distributed-consistent)."""

from raycodec.quantization.core_vq import EuclideanCodebook, VectorQuantization, kmeans
from raycodec.quantization.rvq import (
    QuantizedResult,
    ResidualVectorQuantization,
    ResidualVectorQuantizer,
)

__all__ = ["EuclideanCodebook", "VectorQuantization", "kmeans", "QuantizedResult",
           "ResidualVectorQuantization", "ResidualVectorQuantizer"]
