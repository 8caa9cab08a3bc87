"""What a model will cost on this machine before it is loaded: the memory its weights need at
the dtype and quantization chosen, and the decode speed memory bandwidth allows.

Each decoded token reads every weight the forward pass uses once: all the layers and the output
projection. The input embedding is read one row per token, so an embedding that is not tied to
the output projection is left out. At the bandwidth W the machine moves, decode makes at most
W / (bytes read per token) tokens per second: the roofline a measured speed is a share of.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.quantization import INT4_GROUP_SIZE, bytes_per_parameter

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def stored_bytes_per_parameter(quantization: str, dtype: str) -> float:
    """Bytes a weight holds once the load is done (int4: half a byte and a bf16 scale and zero
    point per group; bnb as bitsandbytes stores them)."""
    if quantization == "int4":
        return 0.5 + 2 * 2 / INT4_GROUP_SIZE
    if quantization in ("bnb-8bit", "bnb-4bit"):
        return bytes_per_parameter(quantization, dtype)
    return DTYPE_BYTES.get(dtype, 4)


def bytes_per_token(
    parameters: int, embedding_parameters: int, tied_embeddings: bool, quantization: str, dtype: str
) -> int:
    """Bytes of weights one decoded token reads."""
    read = parameters if tied_embeddings else max(parameters - embedding_parameters, 0)
    return int(read * stored_bytes_per_parameter(quantization, dtype))


def roofline_tok_s(bytes_read_per_token: int, bandwidth_bytes_per_s: float) -> float:
    return bandwidth_bytes_per_s / bytes_read_per_token if bytes_read_per_token > 0 else 0.0


def limit_pct(decode_tok_s: float, bytes_read_per_token: int, bandwidth_bytes_per_s: float) -> float:
    """A measured decode speed as a share of the bandwidth limit, in percent."""
    limit = roofline_tok_s(bytes_read_per_token, bandwidth_bytes_per_s)
    return 100.0 * decode_tok_s / limit if limit > 0 else 0.0


@dataclass(frozen=True)
class Estimate:
    dtype: str  # what the load would use
    quantization: str
    memory_needed: int  # peak bytes of the weights during the load
    memory_free: int  # bytes free where the model would go
    bytes_per_token: int
    tok_s: float  # the bandwidth limit; 0 when the bandwidth is unknown

    @property
    def fits(self) -> bool:
        return self.memory_needed <= self.memory_free


def estimate(
    parameters: int,
    embedding_parameters: int,
    tied_embeddings: bool,
    dtype: str,
    quantization: str,
    memory_free: int,
    bandwidth_bytes_per_s: float,
) -> Estimate:
    per_token = bytes_per_token(parameters, embedding_parameters, tied_embeddings, quantization, dtype)
    return Estimate(
        dtype=dtype,
        quantization=quantization,
        memory_needed=int(parameters * bytes_per_parameter(quantization, dtype)),
        memory_free=memory_free,
        bytes_per_token=per_token,
        tok_s=roofline_tok_s(per_token, bandwidth_bytes_per_s),
    )
