"""Audio in: decoding, the analysed windows, the 57 features, the MSD_musicnn front-end, fingerprints.

Pure functions over files and arrays; imports nothing else of libtagger but errors and formats.
"""
