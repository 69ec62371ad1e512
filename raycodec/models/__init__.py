"""The EnCodec generator: SEANet encoder/decoder around a residual vector quantizer."""

from raycodec.models.encodec import EncodecModel
from raycodec.models.loading import load_encodec_checkpoint, load_encodec_state
from raycodec.models.presets import PRESETS, build_from_settings, build_model, preset_settings
from raycodec.models.seanet import SEANetDecoder, SEANetEncoder
from raycodec.quantization import QuantizedResult

__all__ = ["EncodecModel", "QuantizedResult", "SEANetEncoder", "SEANetDecoder", "PRESETS",
           "build_model", "build_from_settings", "preset_settings", "load_encodec_checkpoint",
           "load_encodec_state"]
