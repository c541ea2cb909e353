"""Serving and export: a FastAPI app over a trained model, and ONNX export with a parity check.

FastAPI, uvicorn and onnxruntime live behind the ``serve`` and ``onnx`` extras and are
imported inside the functions that need them.
"""
