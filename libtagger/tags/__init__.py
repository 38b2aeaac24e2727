"""Tags on files: one storage class per tag format, and the crash-safe copy-and-rename write.

UI-free and index-free: knows files and mutagen, nothing of scans or the index.
"""
