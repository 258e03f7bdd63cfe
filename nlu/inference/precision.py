"""The torch backend's precisions and the process-wide thread limits it sets.

"float32" is the model as trained; "int8" holds the recurrent and larger linear layers in int8
(`quantize_int8`); "bfloat16" runs batches' recurrent layers in bfloat16 (`RNNEncoder.freeze`).
The names and their check are in `nlu.inference.engine`. BENCHMARKS.md (inference) gives the
speed and scores of each.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from nlu.inference.engine import limit_blas_threads
from nlu.model import JointModel


def set_threads(num_threads: int) -> None:
    """Run torch's intra-op work and NumPy's BLAS on at most `num_threads` threads, for the
    whole process (see `limit_blas_threads`)."""
    torch.set_num_threads(num_threads)
    limit_blas_threads(num_threads)


def quantize_int8(model: JointModel) -> JointModel:
    """A copy of `model` whose LSTM, GRU and larger linear layers hold int8 weights (PyTorch
    dynamic quantization: activations are quantized on the fly, per batch; see
    `MIN_QUANTIZED_WEIGHTS` for which linear layers stay float).

    The weights take a quarter of the memory, so a recurrent step reads them from cache instead
    of main memory: that is where the speed comes from. Activations are rounded with a scale
    taken from each batch, so a sentence's scores can differ slightly with its batch-mates.
    Embeddings, the CRF, `nn.RNN` (rnn and irnn encoders) and the peephole LSTM stay in float32.
    Needs `torch.ao.quantization`, which PyTorch marks as deprecated in favour of torchao but
    still ships.
    """
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        raise ValueError(
            f"quantize: this PyTorch ({torch.__version__}) has no torch.ao.quantization; "
            "load the model without quantization"
        ) from None
    engines = torch.backends.quantized.supported_engines
    if not any(e in engines for e in ("x86", "fbgemm", "qnnpack")):
        raise ValueError(f"quantize: no quantized CPU engine in this PyTorch ({engines})")
    with warnings.catch_warnings():
        # The deprecation notices of torch.ao, repeated for every layer converted.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model.eval(), _worth_quantizing(model), dtype=torch.qint8)


# A dynamically quantized layer first quantizes its input, which costs ~15 us a call on the
# benchmark machine; a float product with fewer weights than this is cheaper (the intent head's
# 400 x 21 projection: 6 us in float, 19 us in int8, at one sentence).
MIN_QUANTIZED_WEIGHTS = 16384


def _worth_quantizing(model: nn.Module) -> set[str]:
    """Names of the recurrent layers, and of the linear layers with enough weights to gain."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, (nn.LSTM, nn.GRU)):
            names.add(name)
        elif isinstance(module, nn.Linear) and module.weight.numel() >= MIN_QUANTIZED_WEIGHTS:
            names.add(name)
    return names
