"""``blurgen composite``: physically motivated 2D motion blur on segmented photo regions.

Data flow: sources (photos + instance masks: SAM, mask files or procedural) -> plan (samples,
split by source) -> per sample: crop/resize, pick instances, blur types and coverage -> blur
operators (linear light, premultiplied) -> composite over the inpainted image -> shards.
"""
