"""Trainer set-up shared by the phases: parameter groups with layer-wise decay, schedules, cost records."""
