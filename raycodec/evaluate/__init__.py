"""Codec evaluation at scale (Ray Data batch inference) with paper-style metrics."""

from raycodec.evaluate.evaluator import METRICS, CodecEvaluator, clip_metrics
from raycodec.evaluate.job import run_evaluation, summarise, to_markdown

__all__ = ["METRICS", "CodecEvaluator", "clip_metrics", "run_evaluation", "summarise",
           "to_markdown"]
