"""Stage 6, distillation: a candidate becomes a student (tokenizer, model, training, folder)."""
