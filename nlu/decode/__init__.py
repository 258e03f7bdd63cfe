"""Decoding tag scores in NumPy: tables, forward-backward, Viterbi, span confidences.

No torch: both backends decode here, the torch one and the ONNX runtime. `TagDecoder` is what
a Parser holds; the torch tag heads call it too.
"""
