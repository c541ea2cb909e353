"""Labelling with active learning: a crash-safe label journal, a queue that asks for the texts
a model is least sure of (diverse, never a near-copy of a labelled text, one annotator at a
time), agreement between annotators, and Label Studio / doccano import and export."""
