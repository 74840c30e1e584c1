"""Data shipped with Atlas: the day-one accuracy prior table (``atlas.day_one``)."""
