"""``blurgen flowpairs``: blurred images from averaged frames, paired with first->last flow."""
