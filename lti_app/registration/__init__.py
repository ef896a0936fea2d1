"""Registering Pathways with an LMS: LTI Dynamic Registration and Canvas's JSON configuration."""
