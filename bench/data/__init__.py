"""Data layer: long readings from real file formats, profiles, resampling, splits and scaling."""

from bench.data.profileset import ProfileSet
from bench.data.readings import Readings

__all__ = ["ProfileSet", "Readings"]
