"""blurgen: motion-blur training data and the baselines that learn from it."""

__version__ = "0.2.0"
