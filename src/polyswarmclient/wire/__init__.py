"""The polyswarmd wire format: JSON shapes, field names and envelopes live here and only here.

The rest of the package sees typed, frozen models.
"""
