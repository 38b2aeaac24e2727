"""Tags on files: one storage module per tag format (storage/), and the crash-safe write.

UI-free and index-free: knows files and mutagen, nothing of scans or the index.
"""
