"""Optical flow utilities shared by the generators: metrics, .flo files, estimators, warping."""
