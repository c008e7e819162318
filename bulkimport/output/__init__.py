"""Outputs: results and report files (formula-safe), progress display."""
