"""Audio in: decoding, the analysed windows, the 57 features, the MSD_musicnn front-end, fingerprints,
and one file's whole analysis in a worker (:mod:`libtagger.audio.analysis`).

Pure functions over files and arrays; imports nothing else of libtagger but errors and formats.
"""
