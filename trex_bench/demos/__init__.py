"""Demonstrations: the on-disk format (``store``), demonstrators (``policies``) and collection (``collect``)."""
