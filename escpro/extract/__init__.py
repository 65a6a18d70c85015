"""ESC-Pro extraction: valid paths, preference pairs, exports, statistics and tree views."""
