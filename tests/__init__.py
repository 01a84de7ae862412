"""The test suite: one folder per app, plus chaos/ (multi-process fault injection), browser/
(real Chromium) and proof/ (statement counts, query growth, API fuzzing).

Tests may import anything, bench included; nothing imports tests.
"""
