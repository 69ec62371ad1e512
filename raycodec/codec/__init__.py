"""Using a trained codec: the `.rcdc` file format, chunked compression and `encodec` export."""

from raycodec.codec.audio import AudioSource, convert_channels
from raycodec.codec.export import export_codec, matching_package_preset
from raycodec.codec.files import compress_file, decompress_file, read_rcdc_header
from raycodec.codec.format import Header, pack_codes, unpack_codes
from raycodec.codec.loading import LoadedCodec, load_codec, model_identity
from raycodec.codec.stream import decode_chunks, encode_chunks

__all__ = ["AudioSource", "Header", "LoadedCodec", "compress_file", "convert_channels",
           "decode_chunks", "decompress_file", "encode_chunks", "export_codec", "load_codec",
           "matching_package_preset", "model_identity", "pack_codes", "read_rcdc_header",
           "unpack_codes"]
