"""The 3D profile: traits from every source, as of any point in time."""
