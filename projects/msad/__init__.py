"""Multi-scale aligned distillation (seeds/003): a multi-scale fusion teacher and low-resolution
students whose feature pyramids are aligned with the teacher's."""
