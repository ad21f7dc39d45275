"""Export of a trained MoE checkpoint into a serving artifact: ONNX (+ fp16/int8 variants), TensorRT.

`python -m tugboat_workloads.export` runs `pipeline.run_export`. The package import itself stays
empty so that `options` and `outcome` (pure) can be used without importing torch.
"""
