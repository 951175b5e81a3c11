"""zhie: Chinese information extraction (NER, schema extraction, sentiment) on ONNX Runtime."""

__version__ = "0.1.0"
