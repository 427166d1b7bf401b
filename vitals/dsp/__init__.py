"""Signal processing: pure functions over numpy arrays, ``sampling_rate`` always a parameter.

Each method is named after the paper it follows; results are frozen dataclasses.  No plotting,
no printing, no I/O.
"""
