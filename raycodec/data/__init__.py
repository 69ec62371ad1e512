"""Audio data: synthetic default dataset, Parquet manifests and Ray Data training segments.

Exports load lazily (PEP 562), so `python -m raycodec.data.manifest` / `.synth` run cleanly and
`import raycodec.data` pulls in neither torch nor ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "raycodec.data.synth": ["collection_plan", "generate_collection", "synth_clip"],
    "raycodec.data.inputs": [
        "AUDIO_EXTENSIONS", "InputError", "expand_inputs", "read_jsonl_manifest",
    ],
    "raycodec.data.probe": ["REJECT_REASONS", "probe_file"],
    "raycodec.data.manifest": [
        "MANIFEST_SCHEMA", "REJECTS_SCHEMA", "ScanResult", "build_manifest", "read_manifest",
        "scan_files",
    ],
    "raycodec.data.segments": [
        "eligible_files", "eval_segment_dataset", "plan_segments", "segment_dataset",
        "segment_dataset_from_config", "segment_kwargs_from_config",
    ],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [  # literal, for static analysers; equals sorted(_WHERE)
    "AUDIO_EXTENSIONS", "InputError", "MANIFEST_SCHEMA", "REJECTS_SCHEMA", "REJECT_REASONS",
    "ScanResult", "build_manifest", "collection_plan", "eligible_files", "eval_segment_dataset",
    "expand_inputs", "generate_collection", "plan_segments", "probe_file", "read_jsonl_manifest",
    "read_manifest", "scan_files", "segment_dataset", "segment_dataset_from_config",
    "segment_kwargs_from_config", "synth_clip",
]

if TYPE_CHECKING:  # static analysers and IDEs see the real symbols
    from raycodec.data.inputs import (
        AUDIO_EXTENSIONS,
        InputError,
        expand_inputs,
        read_jsonl_manifest,
    )
    from raycodec.data.manifest import (
        MANIFEST_SCHEMA,
        REJECTS_SCHEMA,
        ScanResult,
        build_manifest,
        read_manifest,
        scan_files,
    )
    from raycodec.data.probe import REJECT_REASONS, probe_file
    from raycodec.data.segments import (
        eligible_files,
        eval_segment_dataset,
        plan_segments,
        segment_dataset,
        segment_dataset_from_config,
        segment_kwargs_from_config,
    )
    from raycodec.data.synth import collection_plan, generate_collection, synth_clip


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'raycodec.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
