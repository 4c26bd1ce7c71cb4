"""Stage 1, the teacher's knowledge: plugins' base class, fine-tuning, the knowledge cache."""
